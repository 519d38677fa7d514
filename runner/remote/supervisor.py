"""The supervisor: runs one training on the machine, detached from any SSH connection.

It prepares the folders, installs the requirements into a cached venv, runs the install script and
the entry point (stdout and stderr into logs/train.log), keeps status.json current, syncs outputs and
logs to the store every interval and once more at the end, and stops the training at the max runtime.
A failing training is a failed run with its exit code; it never hangs.
"""

import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
import traceback

from . import facts, preemption, telemetry, venv
from .config import RunLayout, SupervisorConfig
from .procs import alive
from .status import Status, now_iso, read_status, reserve_status, write_status
from .location import Location, parse_location
from .stores import StoreError, open_store
from .sync import LocalIndex, pull, push
from .wire import Index


FAILSAFE_MARGIN_MIN = 60  # as infra/stack_inputs.py's: installs and the last sync come on top


def _is_checkpoint(path):
    """The helpers' checkpoints (outputs/checkpoints/...), or any folder of that name: synced last."""
    return path.startswith("checkpoints/") or "/checkpoints/" in path


class Supervisor:
    def __init__(self, layout, config):
        self.layout = layout
        self.config = config
        self.status = Status(run_id=config.run_id, supervisor_pid=os.getpid(), started_at=now_iso())
        self.output = parse_location(config.output_uri) if config.output_uri else Location("file", "", layout.store)
        self.status.output_location = str(self.output)
        self._stores = {}
        self._lock = threading.RLock()  # re-entered when SIGTERM lands while saving
        self._child = None
        self._stop_reason = None  # "stopped", "timed_out" or "preempted"
        self._grace_s = config.stop_grace_s  # a preemption notice shortens it to what the cloud gives
        self._watcher = preemption.watcher_for(config)
        self._watch_stop = threading.Event()
        self._sync_stop = threading.Event()
        self._telemetry_stop = threading.Event()
        self._sampler = telemetry.Sampler(layout.dir)

    # -- status ---------------------------------------------------------------------------------
    def save(self):
        """Returns where the status went: "file", or "reserve" (its reserved slot, on a full disk)."""
        with self._lock:
            return write_status(self.layout.status, self.status)

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

    def enter(self, phase):
        with self._lock:
            self.status.enter(phase)
        self.save()
        self.note("phase: %s" % phase)

    def note(self, text):
        try:
            sys.stdout.write("%s %s\n" % (now_iso(), text))
            sys.stdout.flush()
        except OSError:
            pass  # supervisor.log on a full disk: the status file still says what happens

    # -- stopping -------------------------------------------------------------------------------
    def request_stop(self, reason, grace_s=None):
        """Called from the SIGTERM handler and the deadline timer: no I/O here, only signals."""
        if self._stop_reason is not None:
            return
        if grace_s is not None:
            self._grace_s = grace_s
        self._stop_reason = reason
        child = self._child
        if child is not None and child.poll() is None:
            self._terminate(child)

    def _terminate(self, child):
        try:
            os.killpg(child.pid, signal.SIGTERM)
        except ProcessLookupError:
            return

        def kill_later():
            try:
                child.wait(self._grace_s)
            except subprocess.TimeoutExpired:
                pass
            # Also whatever it started and left behind in its group.
            try:
                os.killpg(child.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass

        threading.Thread(target=kill_later, daemon=True).start()

    def _run_child(self, argv, log, on_start=None, **kw):
        """Run a step (venv, pip, install script, training) in its own process group, so that a
        stop or the deadline can end it and everything it started, and nothing else."""
        if self._stop_reason is not None:
            return -signal.SIGTERM
        try:
            child = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                                     start_new_session=True, **kw)
        except OSError as e:
            log.write(("trainrig: cannot start %s: %s\n" % (argv[0], e)).encode())
            log.flush()
            return 127
        self._child = child
        with self._lock:
            self.status.step_pid = child.pid  # so that a forced stop can end it even without us
        self.save()
        if on_start is not None:
            on_start(child)
        if self._stop_reason is not None:  # the stop arrived while we were starting it
            self._terminate(child)
        rc = child.wait()
        self._child = None
        self._reap_group(child.pid)
        return rc

    def _reap_group(self, pgid):
        """A step is over when its process is: end what it left running in its group."""
        try:
            os.killpg(pgid, signal.SIGTERM)
        except ProcessLookupError:
            return
        end = time.monotonic() + self.config.stop_grace_s
        while time.monotonic() < end:
            time.sleep(0.1)
            try:
                os.killpg(pgid, 0)
            except ProcessLookupError:
                return
        try:
            os.killpg(pgid, signal.SIGKILL)
        except ProcessLookupError:
            pass

    # -- preemption -----------------------------------------------------------------------------
    def _watch_loop(self):
        """Poll the metadata server; on the cloud's notice the training gets SIGTERM and what is
        left of the grace (minus the final sync's share), so the helpers can save a last checkpoint."""
        told = ""
        while not self._watch_stop.wait(self.config.preemption_poll_s):
            notice = self._watcher.check()
            if self._watcher.error and self._watcher.error != told:
                told = self._watcher.error
                self.note("preemption watch: the metadata server did not answer (%s)" % told)
            if notice is not None:
                with self._lock:
                    self.status.preemption = notice.detail
                self.note("preemption notice (%s): stopping the training within %.0fs, then the final sync"
                          % (notice.detail, notice.training_grace_s()))
                self.request_stop("preempted", notice.training_grace_s())
                self.save()
                return

    def _restore(self):
        """A restarted run: the outputs synced by the lost machine come back first, so that
        latest_checkpoint() finds the last one (the logs came back at launch: see restore_logs)."""
        self.enter("restoring")
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
            self.status.enter("finished")
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
        self.enter("pulling dataset")
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

        result = pull(open_store(parse_location(self.config.dataset_uri)), L.dataset, index, progress=progress)
        self.status.pull_progress = [result.bytes_copied, result.files_copied]
        self.status.dataset_hash = LocalIndex(index).tree_hash()
        self.note("dataset: %d of %d files pulled" % (result.files_copied, result.files_total))

    def _sync_loop(self):
        while not self._sync_stop.wait(self.config.sync_interval_s):
            self._sync_all()

    # -- telemetry ------------------------------------------------------------------------------
    def _sample(self):
        """One telemetry line; a nearly full disk goes into the status, where every follower sees
        it, before it ends the training."""
        sample = self._sampler.sample()
        try:
            telemetry.append(self.layout.telemetry, sample)
        except OSError as e:  # a full disk refuses this line too: the warning below still tells
            self.note("telemetry not written: %s" % e)
        warning = telemetry.disk_warning(sample, self.config.disk_warn_below_mb)
        # Once per episode: the figures change every sample, the news does not.
        if bool(warning) != bool(self.status.warning):
            with self._lock:
                self.status.warning = warning
            self.save()
            if warning:
                self.note("warning: %s" % warning)

    def _telemetry_loop(self):
        while True:
            try:
                self._sample()
            except Exception:  # noqa: BLE001 - telemetry must never end the run
                _print_exc()
            if self._telemetry_stop.wait(self.config.telemetry_interval_s):
                return

    # -- the run --------------------------------------------------------------------------------
    def _env(self, venv_dir):
        L = self.layout
        # trainrig_helpers imports with no install: its folder goes after the user's own PYTHONPATH
        # (and Python puts the script's folder before both, so a file of the user's of that name wins).
        helpers = os.path.join(os.path.dirname(os.path.abspath(__file__)), "helpers")
        env = dict(os.environ)
        env.pop("PYTHONHOME", None)
        env.update(
            VIRTUAL_ENV=venv_dir,
            PATH=os.path.join(venv_dir, "bin") + os.pathsep + env.get("PATH", "/usr/bin:/bin"),
            PYTHONUNBUFFERED="1",  # the log must stream, not arrive in 4 KB blocks
            TRAINRIG_RUN_ID=self.config.run_id,
            TRAINRIG_RUN_DIR=L.dir,  # procs.RUN_DIR_MARK: how `down` finds what left the group
            TRAINRIG_DATASET_DIR=L.dataset,
            TRAINRIG_OUTPUT_DIR=L.outputs,
            TRAINRIG_LOGS_DIR=L.logs,
        )
        env.update({k: v for k, v in self.config.env})
        env["PYTHONPATH"] = os.pathsep.join(p for p in (env.get("PYTHONPATH"), helpers) if p)
        return env

    def _argv(self, venv_dir):
        L = self.layout
        if self.config.module:
            return [os.path.join(venv_dir, "bin", "python"), "-m", self.config.module,
                    "--dataset_directory", L.dataset, "--output_directory", L.outputs, "--logs_directory", L.logs]
        return list(self.config.command)

    def _install(self):
        L = self.layout
        req_path = os.path.join(L.code, "requirements.txt")
        requirements = ""
        if os.path.exists(req_path):
            with open(req_path) as f:
                requirements = f.read()
            self.status.requirements = requirements
        venv_dir, reused = venv.ensure(self.config.venv_cache, requirements, L.install_log, self._run_child,
                                     self.config.training_python)
        if self._stop_reason is not None:
            return venv_dir
        self.status.venv_reused = reused
        self.status.venv_dir = venv_dir
        self.status.frozen_requirements = venv.frozen(venv_dir)
        self.save()
        if self.config.install_script:
            with open(L.install_log, "ab") as log:
                rc = self._run_child(["bash", self.config.install_script], log, cwd=L.code, env=self._env(venv_dir))
            if rc != 0 and self._stop_reason is None:
                raise venv.InstallFailed(
                    "the install script %s failed (exit %d)" % (self.config.install_script, rc), venv._tail(L.install_log)
                )
        return venv_dir

    def _train(self, venv_dir):
        L = self.layout
        with open(L.train_log, "ab") as log:
            return self._run_child(self._argv(venv_dir), log, cwd=L.code, env=self._env(venv_dir),
                                   on_start=self._started)

    def _started(self, child):
        with self._lock:
            self.status.training_pid = child.pid
        self.save()

    def _finish_outcome(self, reason_kind, rc):
        s = self.status
        if reason_kind == "stopped" and self._watcher is not None and not s.preemption:
            # The machine's own shutdown (SIGTERM to us all) may come before the next poll saw the notice.
            notice = self._watcher.check()
            if notice is not None:
                reason_kind, s.preemption = "preempted", notice.detail
        s.exit_code = rc
        if reason_kind == "preempted":
            s.outcome, s.reason = "preempted", "the cloud took the machine back (%s): the training was stopped" % s.preemption
        elif reason_kind == "timed_out":
            s.outcome, s.reason = "timed_out", "the max runtime of %ds was reached: the training was stopped" % self.config.max_runtime_s
        elif reason_kind == "stopped":
            s.outcome, s.reason = "stopped", "the training was stopped on request"
        elif rc == 0:
            s.outcome, s.reason = "succeeded", ""
        elif rc is not None and rc < 0:
            s.outcome, s.reason = "failed", "the training was killed by signal %d" % -rc
        else:
            s.outcome, s.reason = "failed", "the training exited with code %s" % rc
        if s.outcome == "failed" and s.warning:
            s.reason += " (%s)" % s.warning  # the likely cause, said where the failure is read
        s.ended_at = now_iso()

    def run(self):
        L, c = self.layout, self.config
        # Inherited by every step: how `stop` recognises this run's processes (pids get reused).
        os.environ["TRAINRIG_RUN_ID"] = c.run_id
        os.environ["TRAINRIG_RUN_DIR"] = L.dir  # procs.RUN_DIR_MARK, unique to this run on this machine
        signal.signal(signal.SIGTERM, lambda *_: self.request_stop("stopped"))
        signal.signal(signal.SIGHUP, signal.SIG_IGN)
        deadline = threading.Timer(c.max_runtime_s, self.request_stop, args=("timed_out",))
        deadline.daemon = True
        deadline.start()
        if c.shutdown_after:
            # Re-arm the machine's failsafe power-off (set at boot) from now: it must outlive this
            # run's own limit, and it still fires if this supervisor dies.
            minutes = c.max_runtime_s // 60 + FAILSAFE_MARGIN_MIN
            subprocess.call(["sudo", "-n", "shutdown", "-h", "+%d" % minutes], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        sync = threading.Thread(target=self._sync_loop, daemon=True)
        sampler = threading.Thread(target=self._telemetry_loop, daemon=True)
        if self._watcher is not None:
            threading.Thread(target=self._watch_loop, daemon=True).start()
        try:
            self.enter("preparing")
            L.make()
            sampler.start()
            if c.restore_from_store:
                self._restore()
            self.status.machine = facts.collect()
            for folder, attr in ((L.code, "code_hash"), (L.dataset, "dataset_hash")):
                index = Index(L.index(folder))
                setattr(self.status, attr, index.tree_hash() if index.files else "")
            self._check_output()
            if self.config.dataset_uri:
                self._pull_dataset()
            self.enter("installing")
            venv_dir = self._install()
            rc = None
            if self._stop_reason is None:
                self.enter("training")
                sync.start()
                rc = self._train(venv_dir)
            self._finish_outcome(self._stop_reason, rc)
        except StoreError as e:
            self.status.outcome, self.status.reason = "failed", "the machine could not use a bucket: %s" % e
            self.status.ended_at = now_iso()
        except venv.InstallFailed as e:
            if self._stop_reason is not None:  # pip ended because we stopped it
                self._finish_outcome(self._stop_reason, None)
            else:
                self.status.outcome, self.status.reason = "install_failed", str(e)
                self.status.install_tail = e.tail
                self.status.ended_at = now_iso()
        except Exception as e:  # the supervisor itself broke: say so rather than hang
            self.status.outcome, self.status.reason = "failed", "the supervisor failed: %s" % e
            self.status.ended_at = now_iso()
            _print_exc()
        finally:
            self._finally(deadline, sync, sampler)

    def _finally(self, deadline, sync, sampler):
        """Each last step on its own: a full disk failing one must not skip the shutdown."""
        deadline.cancel()
        self._watch_stop.set()
        self._sync_stop.set()
        self._telemetry_stop.set()
        if sync.is_alive():
            sync.join()  # never two syncs of the same files at once
        started = sampler.ident is not None
        if started:
            sampler.join(telemetry.SMI_TIMEOUT_S + 5)
        # A sampler still stuck (in nvidia-smi) must not hold up the final sync: no last sample then.
        last_sample = self._sample if started and not sampler.is_alive() else (lambda: None)
        # A last telemetry line (the machine as the training left it) goes out with the final sync.
        for step in (last_sample, lambda: self.enter("syncing"), self._final_sync, self._finish,
                     lambda: self.note("outcome: %s %s (final sync %s)" % (
                         self.status.outcome, self.status.reason, "done" if self.status.final_sync_ok else "NOT finished"))):
            try:
                step()
            except Exception:
                _print_exc()
        if self.config.shutdown_after:
            subprocess.call(["sudo", "-n", "shutdown", "-h", "+1"])


def launch(run_dir, config_text):
    """Start a detached supervisor for `run_dir`; returns its pid once its first status is written."""
    L = RunLayout(run_dir)
    config = SupervisorConfig.from_json(config_text)
    # Relative paths are relative to the login folder; the training runs elsewhere.
    config.venv_cache = os.path.abspath(config.venv_cache)
    config_text = config.to_json()
    L.make()
    # First, while there may still be room: the status stays writable once the disk is full.
    reserve_status(L.status)
    tmp = L.config + ".tmp"
    with open(tmp, "w") as f:
        f.write(config_text)
    os.replace(tmp, L.config)
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:  # child: new session, fork again so that the supervisor is nobody's child
        os.close(r)
        os.setsid()
        if os.fork():
            os._exit(0)
        os.setpgid(0, 0)  # its own group: `kill -- -pid` reaches it (and only it and pip)
        try:
            devnull = os.open(os.devnull, os.O_RDONLY)
            out = os.open(L.supervisor_log, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
            os.dup2(devnull, 0)
            os.dup2(out, 1)
            os.dup2(out, 2)
            sup = Supervisor(L, config)
            sup.save()
            os.write(w, str(os.getpid()).encode())
            os.close(w)
            sup.run()
        finally:
            os._exit(0)
    os.close(w)
    os.waitpid(pid, 0)
    got = b""
    while True:
        chunk = os.read(r, 64)
        if not chunk:
            break
        got += chunk
    os.close(r)
    if not got:
        raise RuntimeError("the supervisor did not start; see %s" % L.supervisor_log)
    return int(got)


def restore_logs(run_dir, config_text):
    """A restarted run's logs from its store, before the launch reply gives their sizes: the new
    attempt appends to them, and a follower goes on from where it was (no line lost or repeated)."""
    config = SupervisorConfig.from_json(config_text)
    if not config.restore_from_store:
        return
    L = RunLayout(run_dir)
    L.make()
    output = parse_location(config.output_uri) if config.output_uri else Location("file", "", L.store)
    pull(open_store(output.child("logs")), L.logs, os.path.join(L.dir, ".sync-logs.json"))
    try:
        with open(L.train_log, "rb+") as f:
            size = f.seek(0, 2)
            if size and f.seek(size - 1) >= 0 and f.read(1) != b"\n":
                f.write(b"\n")  # a line the lost machine cut off stays apart from the next one
    except FileNotFoundError:
        pass


def _print_exc():
    try:
        traceback.print_exc()
    except OSError:
        pass  # supervisor.log is on the full disk too: the status says what happened


def _unlink(path):
    try:
        os.unlink(path)
    except OSError:
        pass


def resync(run_dir):
    """Run the final sync again for a run whose supervisor is gone and whose final sync did not
    finish (a disk that was full, a bucket that failed): `trainrig download` asks for it. Returns
    the status after it; a run still going is left alone."""
    L = RunLayout(run_dir)
    status = read_status(L.status)
    if not status.done:
        if status.supervisor_pid and alive(status.supervisor_pid):
            return status
        status.settle_dead_supervisor()
    if status.final_sync_ok is not False:
        return status
    with open(L.config) as f:
        config = SupervisorConfig.from_json(f.read())
    sup = Supervisor(L, config)
    sup.status = status
    sup.note("resync: the final sync again (it had not finished: %s)" % status.sync_error)
    sup._final_sync()
    sup._publish_final()
    sup.note("resync: %s" % ("done" if status.final_sync_ok else "NOT finished: %s" % status.sync_error))
    return status
