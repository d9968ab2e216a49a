"""nnfast.io under failures, kills, file-size limits and paths that are not files.

``save`` must be atomic: a process killed while saving, a full disk or a
file-size limit leaves the old file loadable and unchanged, and at most
the temporary file of the save that was killed. ``load`` must refuse a
path that is not a regular file with ValueError (or the documented
OSError subclasses), promptly, without blocking.
"""
import errno
import os
import random
import signal
import socket
import stat
import subprocess
import sys
import tempfile
import threading
import time

import numpy as np
import pytest

import nnfast
import nnfast.io
import nnfast.reference
from nnfast.optimizers import Adam

TEMP_SUFFIX = ".nnfast-tmp"  # as the docs of nnfast.io.save name them

# -- helpers -------------------------------------------------------------------------


def trained_net(net_class=nnfast.reference.Net, optimizer=None, layers=(3, 5, 4, 3), seed=3):
    """A small net trained 3 epochs (Adam unless ``optimizer`` is given), so every entry is non-trivial."""
    net = net_class(list(layers), activation=["tanh", "relu"][: len(layers) - 2] or "relu",
                    loss="cross_entropy", seed=seed)
    rng = np.random.default_rng(seed)
    x, y = rng.standard_normal((16, layers[0])), rng.integers(0, layers[-1], 16)
    net.fit(x, y, epochs=3, batch_size=5, optimizer=optimizer or Adam(1e-2), seed=0)
    return net


def big_net(seed, net_class=nnfast.reference.Net):
    """A net of ~52,000 parameters with Adam state: about 1.25 MB on disk."""
    net = net_class([50, 200, 200, 10], seed=seed)
    net.optimizer = Adam(1e-3)
    net.optimizer._bind(net.n_params, net.dtype)
    rng = np.random.default_rng(seed)
    net.optimizer.buffers[0] = rng.standard_normal(net.n_params)
    net.optimizer.buffers[1] = rng.standard_normal(net.n_params) ** 2
    net.optimizer.step_count = 7 + seed
    return net


def assert_same_bits(actual, expected, what):
    assert actual.dtype == expected.dtype and actual.shape == expected.shape, what
    assert actual.tobytes() == expected.tobytes(), f"{what}: values differ"


def assert_same_net(actual, expected):
    """Same class, options, parameters and optimizer state, bit for bit."""
    assert type(actual) is type(expected)
    assert (actual.layers, actual.activation, actual.bias, actual.loss_name, actual.dtype) == (
        expected.layers, expected.activation, expected.bias, expected.loss_name, expected.dtype)
    assert (actual.negative_slope, actual._init, actual._init_std) == (
        expected.negative_slope, expected._init, expected._init_std)
    assert_same_bits(actual._params, expected._params, "params")
    if expected.optimizer is None:
        assert actual.optimizer is None
        return
    assert type(actual.optimizer) is type(expected.optimizer)
    assert actual.optimizer._fields() == expected.optimizer._fields()
    assert actual.optimizer.step_count == expected.optimizer.step_count
    if expected.optimizer.buffers is None:
        assert actual.optimizer.buffers is None
    else:
        assert_same_bits(actual.optimizer.buffers, expected.optimizer.buffers, "optimizer buffers")


def same_net(actual, expected):
    try:
        assert_same_net(actual, expected)
    except AssertionError:
        return False
    return True


def temporaries(directory):
    return sorted(name for name in os.listdir(directory) if name.endswith(TEMP_SUFFIX))


def child_env():
    """The environment for a child Python that must import this very nnfast.

    PYTHONPATH is passed through, with the directory this nnfast was
    imported from in front (the worktree, or site-packages for an
    installed wheel); the child runs in a temporary directory, so that a
    source tree in the current directory cannot shadow it.
    """
    env = dict(os.environ)
    root = os.path.dirname(os.path.dirname(os.path.abspath(nnfast.__file__)))
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [root, env.get("PYTHONPATH")]))
    env.update(OPENBLAS_NUM_THREADS="1", OMP_NUM_THREADS="1", MKL_NUM_THREADS="1")
    return env


def raised_promptly(function, path, *args, timeout=10.0):
    """What ``function(path, *args)``, run in a daemon thread, raised; fails if it did not return
    within ``timeout`` s (a FIFO it blocks on is then opened from the other end to release it)."""
    outcome = {}

    def run():
        try:
            outcome["result"] = function(path, *args)
        except BaseException as error:
            outcome["error"] = error

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    thread.join(timeout)
    if thread.is_alive() and stat.S_ISFIFO(os.stat(path).st_mode):
        for flags in (os.O_RDONLY | os.O_NONBLOCK, os.O_RDWR):
            os.close(os.open(path, flags))
    assert not thread.is_alive(), f"{function.__name__}({path}) did not return within {timeout} s"
    assert "error" in outcome, f"{function.__name__}({path}) returned {outcome['result']!r}"
    return outcome["error"]


# -- save is atomic: failures in the process --------------------------------------------


class Interrupted(BaseException):
    pass


def fail_writing_params(monkeypatch, error):
    """Make save raise ``error`` right after it has written the params member into the temporary file."""
    write_array = np.lib.format.write_array

    def failing(file, array, *args, **kwargs):
        write_array(file, array, *args, **kwargs)
        if array.size > 10:
            raise error

    monkeypatch.setattr(np.lib.format, "write_array", failing)


def fail(error):
    def function(*args, **kwargs):
        raise error
    return function


FAILURES = {
    "KeyboardInterrupt while writing": lambda m: fail_writing_params(m, KeyboardInterrupt()),
    "disk full while writing": lambda m: fail_writing_params(m, OSError(errno.ENOSPC, "No space left on device")),
    "fsync fails": lambda m: m.setattr(os, "fsync", fail(OSError(errno.EIO, "Input/output error"))),
    "KeyboardInterrupt at fsync": lambda m: m.setattr(os, "fsync", fail(KeyboardInterrupt())),
    "replace fails": lambda m: m.setattr(os, "replace", fail(OSError(errno.EXDEV, "Invalid cross-device link"))),
    "any BaseException": lambda m: fail_writing_params(m, Interrupted()),
}


@pytest.mark.parametrize("failure", list(FAILURES))
@pytest.mark.parametrize("existing", [True, False], ids=["replacing", "new"])
def test_a_failed_save_leaves_the_old_file_and_no_temporary(tmp_path, monkeypatch, failure, existing):
    old, new = trained_net(seed=1), trained_net(seed=2)
    path = tmp_path / "net.npz"
    if existing:
        nnfast.io.save(old, path)
        before = path.read_bytes()
    FAILURES[failure](monkeypatch)
    with pytest.raises(BaseException) as excinfo:
        nnfast.io.save(new, path)
    assert not isinstance(excinfo.value, AssertionError)
    monkeypatch.undo()
    assert os.listdir(tmp_path) == (["net.npz"] if existing else [])
    if existing:
        assert path.read_bytes() == before
        assert_same_net(nnfast.io.load(path), old)


def test_save_keeps_the_permissions_of_the_file_it_replaces_and_applies_the_umask(tmp_path):
    net = trained_net()
    path = tmp_path / "net.npz"
    nnfast.io.save(net, path)
    os.chmod(path, 0o600)
    nnfast.io.save(net, path)
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    os.chmod(path, 0o664)
    nnfast.io.save(net, path)
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o664
    previous = os.umask(0o027)
    try:
        nnfast.io.save(net, tmp_path / "new.npz")
    finally:
        os.umask(previous)
    assert stat.S_IMODE(os.stat(tmp_path / "new.npz").st_mode) == 0o640


def test_save_through_a_symlink_replaces_the_file_it_points_to(tmp_path):
    old, new = trained_net(seed=1), trained_net(seed=2)
    (tmp_path / "models").mkdir()
    (tmp_path / "links").mkdir()
    real = tmp_path / "models" / "net.npz"
    link = tmp_path / "links" / "current.npz"
    nnfast.io.save(old, real)
    link.symlink_to(os.path.join("..", "models", "net.npz"))  # relative, as links often are
    returned = nnfast.io.save(new, link)
    assert returned == link
    assert link.is_symlink() and os.readlink(link) == os.path.join("..", "models", "net.npz")
    assert_same_net(nnfast.io.load(real), new)
    assert_same_net(nnfast.io.load(link), new)
    assert os.listdir(tmp_path / "models") == ["net.npz"] and os.listdir(tmp_path / "links") == ["current.npz"]
    # A dangling link gets its file created, as open() would.
    dangling = tmp_path / "links" / "next.npz"
    dangling.symlink_to(tmp_path / "models" / "next.npz")
    nnfast.io.save(old, dangling)
    assert dangling.is_symlink()
    assert_same_net(nnfast.io.load(tmp_path / "models" / "next.npz"), old)


def test_save_refuses_paths_it_must_not_replace(tmp_path):
    """save neither blocks on a FIFO nor replaces a device; nor does it write into a directory."""
    net = trained_net()

    def save_to(path):
        return nnfast.io.save(net, path)

    assert isinstance(raised_promptly(save_to, tmp_path), IsADirectoryError)
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    error = raised_promptly(save_to, fifo)
    assert type(error) is ValueError and "it is a FIFO (named pipe), not a regular file" in str(error), repr(error)
    assert stat.S_ISFIFO(os.lstat(fifo).st_mode)
    error = raised_promptly(save_to, "/dev/null")
    assert type(error) is ValueError and "it is a character device" in str(error), repr(error)
    loop = tmp_path / "loop"
    loop.symlink_to(loop)
    with pytest.raises(OSError):
        nnfast.io.save(net, loop)
    assert loop.is_symlink()
    assert sorted(os.listdir(tmp_path)) == ["fifo", "loop"]


def test_a_reader_never_sees_a_partial_file(tmp_path):
    """One thread saves two nets alternately; every load in the other gets one of them, whole."""
    nets = [big_net(1), big_net(2)]
    path = tmp_path / "net.npz"
    nnfast.io.save(nets[0], path)
    stop = threading.Event()
    errors = []

    def keep_saving():
        try:
            while not stop.is_set():
                for net in nets:
                    nnfast.io.save(net, path)
        except BaseException as error:  # reported by the main thread
            errors.append(error)

    writer = threading.Thread(target=keep_saving, daemon=True)
    writer.start()
    try:
        seen = set()
        deadline = time.monotonic() + 0.5
        while time.monotonic() < deadline or len(seen) < 2 and time.monotonic() < deadline + 5:
            loaded = nnfast.io.load(path)
            matches = [index for index, net in enumerate(nets) if same_net(loaded, net)]
            assert matches, "a load returned a net that is neither of the two saved"
            seen.update(matches)
    finally:
        stop.set()
        writer.join(10)
    assert not errors
    assert seen == {0, 1}


# -- save is atomic: killed processes and file-size limits ---------------------------------

# A fork server: it imports nnfast and loads the two nets once, then for
# each line on stdin forks a process that saves them alternately to the
# target until it is killed, prints that process's pid, reaps it and
# prints its wait status. Forking spares each kill the half second that
# starting Python and importing nnfast take.
KILL_CHILD = r"""
import os, sys
import nnfast, nnfast.io
print(nnfast.__file__, flush=True)
first, second, target = sys.argv[1:4]
nets = [nnfast.io.load(first), nnfast.io.load(second)]
for line in sys.stdin:
    pid = os.fork()
    if pid == 0:
        try:
            while True:
                for net in nets:
                    nnfast.io.save(net, target)
        finally:
            os._exit(3)
    print(pid, flush=True)
    print(os.waitpid(pid, 0)[1], flush=True)
"""


def test_sigkill_while_saving_leaves_one_of_the_two_nets(tmp_path):
    """SIGKILL at random moments of repeated saves: the file always loads, as one of the nets, exactly.

    What a kill leaves behind: at most the temporary file of the save it
    interrupted (``.net.npz.<16 hex digits>.nnfast-tmp``); no later save
    removes it. The test removes it after each kill, so that a second one
    would show a save that does not clean up after itself.
    """
    nets = [big_net(1), big_net(2)]
    references = [nnfast.io.save(net, tmp_path / f"reference{index}.npz") for index, net in enumerate(nets)]
    directory = tmp_path / "target"
    directory.mkdir()
    target = directory / "net.npz"
    nnfast.io.save(nets[0], target)
    start = time.perf_counter()
    for _ in range(3):
        nnfast.io.save(nets[1], target)
    save_time = (time.perf_counter() - start) / 3
    nnfast.io.save(nets[0], target)

    child = subprocess.Popen(
        [sys.executable, "-c", KILL_CHILD, *map(str, references), str(target)], cwd=tmp_path, env=child_env(),
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    watchdog = threading.Timer(120, child.kill)  # a hung child ends the test instead of the run
    watchdog.start()

    def reply():
        line = child.stdout.readline()
        if not line:
            child.kill()
            raise AssertionError(f"the child exited: {child.stderr.read()}")
        return line.strip()

    rng = random.Random(20240613)
    held, left_behind = [], 0
    try:
        assert reply() == nnfast.__file__
        for _ in range(25):
            child.stdin.write("save\n")
            child.stdin.flush()
            pid = int(reply())
            time.sleep(rng.uniform(0, 6 * save_time))  # a few saves, killed anywhere in one
            os.kill(pid, signal.SIGKILL)
            status = int(reply())
            assert os.WIFSIGNALED(status) and os.WTERMSIG(status) == signal.SIGKILL, f"saver ended: {status}"
            loaded = nnfast.io.load(target)
            matches = [index for index, net in enumerate(nets) if same_net(loaded, net)]
            assert matches, "after a kill the file holds neither net"
            held.append(matches[0])
            strays = temporaries(directory)
            assert len(strays) <= 1, strays
            assert sorted(os.listdir(directory)) == sorted(["net.npz", *strays])
            left_behind += len(strays)
            for name in strays:
                os.unlink(directory / name)
        child.stdin.close()
        assert child.wait(timeout=30) == 0, child.stderr.read()
    finally:
        watchdog.cancel()
        if child.poll() is None:
            child.kill()
            child.wait()
        child.stdout.close()
        child.stderr.close()
    # The kills landed in different places: both nets were seen, and some
    # kills interrupted a save in progress (others came between saves).
    assert set(held) == {0, 1}, held
    assert left_behind >= 1


FSIZE_CHILD = r"""
import os, resource, signal, sys
import nnfast, nnfast.io, nnfast.reference
existing, new, limit = sys.argv[1], sys.argv[2], int(sys.argv[3])
net = nnfast.reference.Net([200, 500, 10], seed=0)  # 105,510 parameters: 844 KB
signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # a write beyond the limit fails with EFBIG instead
resource.setrlimit(resource.RLIMIT_FSIZE, (limit, resource.getrlimit(resource.RLIMIT_FSIZE)[1]))
for path in (existing, new):
    try:
        nnfast.io.save(net, path)
    except OSError as error:
        print("OSError", error.errno, flush=True)
    else:
        print("saved", flush=True)
"""


def test_a_file_size_limit_leaves_the_old_file_and_no_temporary(tmp_path):
    old = trained_net()
    existing, new = tmp_path / "net.npz", tmp_path / "new.npz"
    nnfast.io.save(old, existing)
    before = existing.read_bytes()
    result = subprocess.run([sys.executable, "-c", FSIZE_CHILD, str(existing), str(new), str(64 * 1024)],
                            cwd=tmp_path, env=child_env(), capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert result.stdout.split("\n")[:2] == [f"OSError {errno.EFBIG}"] * 2, result.stdout + result.stderr
    assert existing.read_bytes() == before
    assert_same_net(nnfast.io.load(existing), old)
    assert os.listdir(tmp_path) == ["net.npz"]  # no new file, no temporary


# -- load: paths that are not regular files --------------------------------------------------


def load_promptly(path):
    return raised_promptly(nnfast.io.load, path)


def make_fifo(directory):
    path = directory / "fifo.npz"
    os.mkfifo(path)
    return path


def make_symlink_to_fifo(directory):
    fifo = make_fifo(directory)
    link = directory / "link.npz"
    link.symlink_to(fifo)
    return link


SPECIAL_PATHS = {
    "fifo": (make_fifo, "FIFO (named pipe)"),
    "symlink to a fifo": (make_symlink_to_fifo, "FIFO (named pipe)"),
    "/dev/null": (lambda directory: "/dev/null", "character device"),
    "/dev/zero": (lambda directory: "/dev/zero", "character device"),
}


@pytest.mark.parametrize("case", list(SPECIAL_PATHS))
def test_load_refuses_special_files_without_blocking(tmp_path, case):
    make, kind = SPECIAL_PATHS[case]
    path = make(tmp_path)
    error = load_promptly(path)
    assert type(error) is ValueError, repr(error)
    assert str(error) == f"{path} is not a valid nnfast file: it is a {kind}, not a regular file"


def test_load_refuses_a_socket(tmp_path):
    with tempfile.TemporaryDirectory(dir="/tmp") as directory:  # a socket's path must be short
        path = os.path.join(directory, "socket.npz")
        server = socket.socket(socket.AF_UNIX)
        try:
            server.bind(path)
            server.listen()
            error = load_promptly(path)
        finally:
            server.close()
    assert type(error) is ValueError, repr(error)
    assert str(error) == f"{path} is not a valid nnfast file: it is a socket, not a regular file"


def test_load_of_a_directory_raises_is_a_directory_and_value_error(tmp_path):
    error = load_promptly(tmp_path)
    assert isinstance(error, IsADirectoryError) and isinstance(error, ValueError), repr(error)
    assert type(error) is nnfast.io.PathIsADirectoryError
    assert error.errno == errno.EISDIR and error.filename == os.fspath(tmp_path)


def test_load_of_a_missing_path_raises_file_not_found_and_value_error(tmp_path):
    for path in (tmp_path / "nothing.npz", tmp_path / "no" / "such" / "dir.npz"):
        error = load_promptly(path)
        assert isinstance(error, FileNotFoundError) and isinstance(error, ValueError), repr(error)
        assert type(error) is nnfast.io.PathNotFoundError
        assert error.errno == errno.ENOENT and error.filename == os.fspath(path)
    dangling = tmp_path / "dangling.npz"
    dangling.symlink_to(tmp_path / "nothing.npz")
    assert isinstance(load_promptly(dangling), nnfast.io.PathNotFoundError)
