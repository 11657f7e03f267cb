"""The sandbox where bubblewrap is missing: util-linux `unshare` and `setpriv`, and a short POSIX script.

What bubblewrap does, done by hand, in the same order. In new mount, PID, IPC and UTS
namespaces (a user namespace too when condaqa is not root), the script binds the whole tree
to a staging folder, makes every mount there but /proc read-only (keeping each one's nosuid, nodev,
noexec and atime flags), then makes the layout's steps (layout.py) on the staging tree, with
sources taken from the real one, and makes it the root (pivot_root, the old one detached; a
chroot would keep a user that is not root from the user namespace it maps back to). `setpriv`
then drops to the
sandbox user with no capabilities and `no_new_privs`; the foreign process is the PID
namespace's first process, so everything it starts dies with it, and `--kill-child` with a
parent-death signal ties that to condaqa's own process.
"""

from __future__ import annotations

SCRIPT = r"""set -eu
umask 022
stage=$1; shift
ro() {
  while read -r _ _ _ _ point opts _; do
    point=$(printf '%b' "$point")
    case $point in "$1"|"$1"/*) ;; *) continue ;; esac
    case $point in "$stage/proc"|"$stage/proc/"*) continue ;; esac
    flags=ro
    for flag in nosuid nodev noexec noatime nodiratime relatime strictatime; do
      case ,$opts, in *,$flag,*) flags=$flags,$flag ;; esac
    done
    mount -o "remount,bind,$flags" "$point"
  done < /proc/self/mountinfo
}
place() {
  if [ -d "$1" ]; then mkdir -p "$stage$1"; else mkdir -p "$(dirname "$stage$1")"; : > "$stage$1"; fi
}
mount --rbind / "$stage"
ro "$stage"
masks=
while [ "$1" != -- ]; do
  case $1 in
    tmpfs) mount -t tmpfs -o "mode=$3,nosuid,nodev" tmpfs "$stage$2"; shift 3 ;;
    mask) mount -t tmpfs -o mode=0755,nosuid,nodev tmpfs "$stage$2"; masks="$masks $2"; shift 2 ;;
    dir) mkdir -p "$stage$2"; chmod "$3" "$stage$2"; shift 3 ;;
    ro) place "$2"; mount --rbind "$2" "$stage$2"; ro "$stage$2"; shift 2 ;;
    rw) place "$2"; mount --bind "$2" "$stage$2"; shift 2 ;;
    *) echo "condaqa sandbox: unknown step $1" >&2; exit 125 ;;
  esac
done
shift
for mask in $masks; do mount -o remount,bind,ro,nosuid,nodev "$stage$mask"; done
cwd=$1; shift
mkdir "$stage/tmp/.old-root"
cd "$stage"
pivot_root . tmp/.old-root
umount -l /tmp/.old-root
rmdir /tmp/.old-root
cd "$cwd"
exec "$@"
"""


def command(tools: dict[str, str], *, root: bool, stage: str, words: list[str], cwd: str, uid: int, gid: int,
            groups: tuple[int, ...], final: list[str]) -> list[str]:
    """argv that runs `final` (already `env -i ...`) in the sandbox, as uid:gid with `groups`."""
    namespaces = ["--mount", "--pid", "--fork", "--kill-child", "--mount-proc", "--ipc", "--uts",
                  "--propagation", "private"]
    drop = [tools["setpriv"], "--no-new-privs", "--bounding-set", "-all", "--inh-caps", "-all"]
    if root:
        drop[1:1] = ["--reuid", str(uid), "--regid", str(gid),
                     *(["--groups", ",".join(map(str, groups))] if groups else ["--clear-groups"])]
    else:  # leave the user namespace that made the mounts for one mapped back to the invoking user
        namespaces.insert(0, "--map-root-user")
        drop = [tools["unshare"], f"--map-user={uid}", f"--map-group={gid}", "--", *drop]
    return [tools["setpriv"], "--pdeathsig", "KILL", "--", tools["unshare"], *namespaces, "--", tools["sh"], "-c",
            SCRIPT, "condaqa-sandbox", stage, *words, "--", cwd, *drop, "--", *final]
