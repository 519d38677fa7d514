"""The supervisor's main loop: one training on the machine, detached from any SSH connection.

It prepares the folders, installs the requirements into a cached venv, runs the install script and
the entry point (stdout and stderr into logs/train.log), keeps status.json current, syncs outputs and
logs to the store every interval and once more at the end, and stops the training at the max runtime.
A failing training is a failed run with its exit code; it never hangs.
"""

import os
import signal
import subprocess
import sys
import threading
import traceback

from . import facts, preemption, telemetry, venv
from .index import FileIndex
from .location import Location, parse_location
from .peers import Peers
from .phases import MachinePhase as Phase
from .phases import Outcome, StopReason
from .status import Status, now_iso, write_status
from .stores import StoreError
from .supervisor_install import InstallStep
from .supervisor_sync import SyncSteps
from .supervisor_training import TrainingSteps

FAILSAFE_MARGIN_MIN = 60  # as infra/stack_inputs.py's: installs and the last sync come on top


class Supervisor(TrainingSteps, InstallStep, SyncSteps):
    def __init__(self, layout, config):
        self.layout = layout
        self.config = config
        self.status = Status(run_id=config.run_id, supervisor_pid=os.getpid(), started_at=now_iso())
        self.output = parse_location(config.output_uri) if config.output_uri else Location("file", "", layout.store)
        self.status.output_location = str(self.output)
        self._stores = {}
        self._lock = threading.RLock()  # re-entered when SIGTERM lands while saving
        self._child = None
        self._stop_reason = None  # a StopReason
        self._grace_s = config.stop_grace_s  # a preemption notice shortens it to what the cloud gives
        self._watcher = preemption.watcher_for(config)
        self._watch_stop = threading.Event()
        self._sync_stop = threading.Event()
        self._telemetry_stop = threading.Event()
        self._sampler = telemetry.Sampler(layout.dir)
        # Multi-node: a peer's failure stops this training (its outcome: failed, naming that node).
        self._peers = Peers(config, lambda: self.request_stop(StopReason.PEER_FAILED))

    # -- status ---------------------------------------------------------------------------------
    def save(self):
        """Returns where the status went: "file", or "reserve" (its reserved slot, on a full disk)."""
        with self._lock:
            return write_status(self.layout.status, self.status)

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
                self.request_stop(StopReason.PREEMPTED, notice.training_grace_s())
                self.save()
                return

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
    def _finish_outcome(self, reason_kind, rc):
        s = self.status
        if reason_kind == StopReason.STOPPED and self._watcher is not None and not s.preemption:
            # The machine's own shutdown (SIGTERM to us all) may come before the next poll saw the notice.
            notice = self._watcher.check()
            if notice is not None:
                reason_kind, s.preemption = StopReason.PREEMPTED, notice.detail
        s.exit_code = rc
        if reason_kind == StopReason.PREEMPTED:
            s.outcome, s.reason = Outcome.PREEMPTED, "the cloud took the machine back (%s): the training was stopped" % s.preemption
        elif reason_kind == StopReason.TIMED_OUT:
            s.outcome, s.reason = Outcome.TIMED_OUT, "the max runtime of %ds was reached: the training was stopped" % self.config.max_runtime_s
        elif reason_kind == StopReason.STOPPED:
            s.outcome, s.reason = Outcome.STOPPED, "the training was stopped on request"
        elif rc == 0:
            s.outcome, s.reason = Outcome.SUCCEEDED, ""
        elif rc is not None and rc < 0:
            s.outcome, s.reason = Outcome.FAILED, "the training was killed by signal %d" % -rc
        else:
            s.outcome, s.reason = Outcome.FAILED, "the training exited with code %s" % rc
        if s.outcome == Outcome.FAILED and s.warning:
            s.reason += " (%s)" % s.warning  # the likely cause, said where the failure is read
        s.ended_at = now_iso()

    def run(self):
        L, c = self.layout, self.config
        # Inherited by every step: how `stop` recognises this run's processes (pids get reused).
        os.environ["TRAINRIG_RUN_ID"] = c.run_id
        os.environ["TRAINRIG_RUN_DIR"] = L.dir  # procs.RUN_DIR_MARK, unique to this run on this machine
        signal.signal(signal.SIGTERM, lambda *_: self.request_stop(StopReason.STOPPED))
        signal.signal(signal.SIGHUP, signal.SIG_IGN)
        deadline = threading.Timer(c.max_runtime_s, self.request_stop, args=(StopReason.TIMED_OUT,))
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
            self.enter(Phase.PREPARING)
            self._peers.listen()
            L.make()
            sampler.start()
            if c.restore_from_store:
                self._restore()
            self.status.machine = facts.collect()
            for folder, attr in ((L.code, "code_hash"), (L.dataset, "dataset_hash")):
                index = FileIndex(L.index(folder))
                setattr(self.status, attr, index.tree_hash() if index.files else "")
            self._check_output()
            if self.config.dataset_uri:
                self._pull_dataset()
            self.enter(Phase.INSTALLING)
            venv_dir = self._install()
            rc = None
            if self._stop_reason is None:
                self.enter(Phase.TRAINING)
                sync.start()
                rc = self._train(venv_dir)
            self._finish_outcome(self._stop_reason, rc)
        except StoreError as e:
            self.status.outcome, self.status.reason = Outcome.FAILED, "the machine could not use a bucket: %s" % e
            self.status.ended_at = now_iso()
        except venv.InstallFailed as e:
            if self._stop_reason is not None:  # pip ended because we stopped it
                self._finish_outcome(self._stop_reason, None)
            else:
                self.status.outcome, self.status.reason = Outcome.INSTALL_FAILED, str(e)
                self.status.install_tail = e.tail
                self.status.ended_at = now_iso()
        except Exception as e:  # the supervisor itself broke: say so rather than hang
            self.status.outcome, self.status.reason = Outcome.FAILED, "the supervisor failed: %s" % e
            self.status.ended_at = now_iso()
            _print_exc()
        finally:
            self._finally(deadline, sync, sampler)

    def _finally(self, deadline, sync, sampler):
        """Each last step on its own: a full disk failing one must not skip the shutdown."""
        deadline.cancel()
        try:
            self._peers.ended(self.status)  # multi-node: this node's failure stops the others at once
        except Exception:
            _print_exc()
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
        for step in (last_sample, lambda: self.enter(Phase.SYNCING), self._final_sync, self._finish,
                     lambda: self.note("outcome: %s %s (final sync %s)" % (
                         self.status.outcome, self.status.reason, "done" if self.status.final_sync_ok else "NOT finished"))):
            try:
                step()
            except Exception:
                _print_exc()
        if self.config.shutdown_after:
            subprocess.call(["sudo", "-n", "shutdown", "-h", "+1"])


def _print_exc():
    try:
        traceback.print_exc()
    except OSError:
        pass  # supervisor.log is on the full disk too: the status says what happened
