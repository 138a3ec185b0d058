"""A private containerd daemon for client tests, and its `ctr` CLI.

Its root, state and socket live in a temporary directory, so it never touches the host's
containerd (or the one docker runs). Only the plugins a pull needs are loaded.

    with PrivateContainerd(tmp_path) as containerd:
        containerd.ctr('images', 'pull', '--tlscacert', ca, ref)
"""
import os
import shutil
import signal
import subprocess
import tempfile
import time

CONFIG = """version = 2
root = "{root}"
state = "{state}"
disabled_plugins = ["io.containerd.grpc.v1.cri"]
[grpc]
  address = "{socket}"
[ttrpc]
  address = "{socket}.ttrpc"
[debug]
  address = ""
[metrics]
  address = ""
"""


class PrivateContainerd:
    def __init__(self, base_dir=None, namespace='registry-tests'):
        self.dir = tempfile.mkdtemp(prefix='containerd-', dir=base_dir)
        self.socket = os.path.join(self.dir, 'containerd.sock')
        self.namespace = namespace
        self.config_path = os.path.join(self.dir, 'config.toml')
        self.log_path = os.path.join(self.dir, 'containerd.log')
        self.process = None

    def start(self, config_text=None):
        with open(self.config_path, 'w') as stream:
            stream.write(config_text or CONFIG.format(
                root=os.path.join(self.dir, 'root'), state=os.path.join(self.dir, 'state'),
                socket=self.socket))
        log = open(self.log_path, 'wb')
        self.process = subprocess.Popen(['containerd', '--config', self.config_path],
                                        stdout=log, stderr=subprocess.STDOUT,
                                        start_new_session=True)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError('containerd exited: ' + self.log())
            if os.path.exists(self.socket) and self.ctr('version', check=False).returncode == 0:
                return self
            time.sleep(0.2)
        raise RuntimeError('containerd did not answer: ' + self.log())

    def log(self):
        with open(self.log_path, errors='replace') as stream:
            return stream.read()[-2000:]

    def ctr(self, *args, check=True, timeout=300):
        return subprocess.run(['ctr', '--address', self.socket, '--namespace', self.namespace]
                              + list(args), capture_output=True, text=True, check=check,
                              timeout=timeout)

    def stop(self):
        if self.process and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait()
        shutil.rmtree(self.dir, ignore_errors=True)

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()
