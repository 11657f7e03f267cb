"""census-team: harmonize is the commit pip installed from git, not some release from an index."""
import json
from importlib import metadata

import harmonize

assert harmonize.__version__ == "0.2.0", harmonize.__version__
origin = json.loads(metadata.distribution("harmonize").read_text("direct_url.json") or "{}")
assert origin.get("vcs_info", {}).get("vcs") == "git", f"harmonize was not installed from git: {origin}"
print(f"harmonize {harmonize.__version__} from {origin['url']} at {origin['vcs_info']['commit_id'][:12]}")
