"""What qualifies a built environment: its versions match current, its key modules import, its
owners' checks pass, its kernels start; each run with the environment's own python, in the sandbox."""
