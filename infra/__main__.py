"""The Pulumi program (`Pulumi.yaml`: `main: infra/`): one stack per run, its config in
stacks/Pulumi.<run>.yaml. The gcp and aws components are not built yet; the local and ssh targets
need no stack. Until they are, `pulumi up` says so instead of creating anything."""

import sys

sys.stderr.write(
    "trainrig: the gcp and aws stacks are not available yet; use `trainrig run --target local` or "
    "`--target ssh` (they need no Pulumi stack).\n"
)
sys.exit(2)
