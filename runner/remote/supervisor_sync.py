"""The supervisor's transfers: the dataset in, outputs, logs and status out to the store, every
interval and once more at the end, and a restarted run's outputs back from the store."""

import os
import tempfile
import time

from .location import parse_location
from .phases import MachinePhase as Phase
from .status import Status, now_iso, write_status
from .stores import open_store
from .sync import pull, push


def _is_checkpoint(path):
    """The helpers' checkpoints (outputs/checkpoints/...), or any folder of that name: synced last."""
    return path.startswith("checkpoints/") or "/checkpoints/" in path


def _unlink(path):
    try:
        os.unlink(path)
    except OSError:
        pass


class SyncSteps:
    """Part of Supervisor (supervisor_loop.py): uses its layout, config, output, status, _lock,
    save(), enter() and note()."""

    def _status_file(self):
        """A file holding the status as it is now, to upload: status.json itself when the last save
        reached it, else a copy written beside it or, on a full disk, into memory (/dev/shm)."""
        for folder in (self.layout.dir, "/dev/shm", tempfile.gettempdir()):
            path = os.path.join(folder, ".trainrig-status-%s-%d.json" % (self.config.run_id, os.getpid()))
            try:
                with self._lock:
                    s = Status.from_dict(self.status.to_dict())
                write_status(path, s)
                return path
            except OSError:
                continue
        raise OSError("no room anywhere for a copy of the status to upload")

    def _upload_status(self, saved_to):
        path = self.layout.status if saved_to == "file" else self._status_file()
        try:
            self._store("").upload(path, "status.json", os.path.getsize(path))
        finally:
            if path != self.layout.status:
                _unlink(path)

    def _restore(self):
        """A restarted run: the outputs synced by the lost machine come back first, so that
        latest_checkpoint() finds the last one (the logs came back at launch: see restore_logs)."""
        self.enter(Phase.RESTORING)
        L = self.layout
        result = pull(self._store("outputs"), L.outputs, os.path.join(L.dir, ".sync-outputs.json"))
        with self._lock:
            self.status.restored_files = result.files_copied
        self.note("restored %d of %d output files from %s" % (result.files_copied, result.files_total, self.output))

    # -- syncing --------------------------------------------------------------------------------
    def _store(self, name):
        if name not in self._stores:
            self._stores[name] = open_store(self.output.child(name) if name else self.output)
        return self._stores[name]

    def _sync_all(self):
        """Outputs and logs to the output location (only what changed), then the status beside them.
        Each on its own: a failure syncing one must not stop the other, nor the sync loop."""
        L = self.layout
        errors = []
        for name, folder in (("outputs", L.outputs), ("logs", L.logs)):
            try:
                r = push(folder, self._store(name), os.path.join(L.dir, ".sync-%s.json" % name), workers=8,
                         last=_is_checkpoint if name == "outputs" else None)
                for path, why in r.skipped:
                    self.note("sync skipped %s/%s: %s" % (name, path, why))
            except Exception as e:  # noqa: BLE001 - the loop must outlive any one failure
                errors.append("%s: %s" % (name, e))
                self.note("sync of %s failed: %s" % (name, e))
        self.status.sync_error = "; ".join(errors)
        if not errors:
            self.status.last_sync_at = now_iso()
        self._push_status()
        return errors

    def _final_sync(self):
        """The last sync after the training; whether it finished goes into the status, since only
        then may the machine (or its disk) go."""
        try:
            errors = self._sync_all()
        except Exception as e:  # noqa: BLE001 - recorded as not finished, never as done
            errors = ["the sync itself failed: %s" % e]
            self.status.sync_error = errors[0]
        with self._lock:
            self.status.final_sync_ok = not errors

    def _check_output(self):
        """Write a probe where outputs go, as the machine (not the user) will: fail now rather
        than train for hours into a store that refuses every sync."""
        if not self.output.is_bucket:
            return
        probe = os.path.join(self.layout.dir, ".write-check")
        with open(probe, "w") as f:
            f.write(self.config.run_id)
        store = self._store("")
        store.upload(probe, ".trainrig-write-check", os.path.getsize(probe))
        store.delete(".trainrig-write-check")

    def _finish(self):
        """"finished" reaches the store before this machine's own status says so: whoever sees the
        run finished here (a follower, then a download) finds it finished in the bucket too."""
        with self._lock:
            self.status.enter(Phase.FINISHED)
        self._publish_final()
        self.note("phase: finished")

    def _publish_final(self):
        """The final status to the store, then here. A store that refuses it leaves the run's outputs
        without their status there: the final sync did not finish either."""
        try:
            self._upload_status("copy")
        except Exception as e:  # noqa: BLE001 - the status stays on the machine in any case
            self.note("could not copy the status to %s: %s" % (self.output, e))
            with self._lock:
                if self.status.final_sync_ok:
                    self.status.final_sync_ok = False
                    self.status.sync_error = "the status: %s" % e
        self.save()

    def _push_status(self):
        """status.json beside the outputs, so a download needs no machine (it may be gone)."""
        try:
            self._upload_status(self.save())
        except Exception as e:  # noqa: BLE001 - the status stays on the machine in any case
            self.note("could not copy the status to %s: %s" % (self.output, e))

    def _pull_dataset(self):
        self.enter(Phase.PULLING_DATASET)
        L = self.layout
        index = os.path.join(L.dir, ".sync-dataset.json")
        last = [0.0]

        def progress(nbytes, files):
            # Into the status (which the follower streams) at most twice a second.
            if time.monotonic() - last[0] >= 0.5:
                last[0] = time.monotonic()
                with self._lock:
                    self.status.pull_progress = [nbytes, files]
                self.save()

        result = pull(open_store(parse_location(self.config.dataset_uri)), L.dataset, index, progress=progress,
                      tree_hash=True)
        self.status.pull_progress = [result.bytes_copied, result.files_copied]
        self.status.dataset_hash = result.tree_hash  # as an uploaded dataset's (index.py)
        self.note("dataset: %d of %d files pulled" % (result.files_copied, result.files_total))

    def _sync_loop(self):
        while not self._sync_stop.wait(self.config.sync_interval_s):
            self._sync_all()
