"""The Pulumi components of one run: a GCP GPU VM, a GCP TPU VM or an AWS GPU instance, each with its
firewall, output bucket and narrow identity (infra/program.py picks one)."""
