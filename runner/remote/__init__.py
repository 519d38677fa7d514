"""What runs on the machine: copied there by the runner, standard library only, Python 3.8+.

Every module here uses relative imports only, so the folder works both as `runner.remote` on the
user's computer and as `trainrig_remote` in the machine's tools folder.
"""
