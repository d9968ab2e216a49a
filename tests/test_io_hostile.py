"""nnfast.io under kills, full disks, hostile paths and hostile files.

``save`` must be atomic: a process killed while saving, a full disk or a
file-size limit leaves the old file loadable and unchanged, and at most
the temporary file of the save that was killed. ``load`` must refuse
anything ``save`` could not have written with ValueError (or the
documented OSError subclasses), promptly, without blocking, without
allocating more than a small multiple of the file's real size, and
without ever executing code from the file.
"""
import errno
import io
import os
import pickle
import random
import re
import signal
import socket
import stat
import struct
import subprocess
import sys
import tempfile
import threading
import time
import tracemalloc
import warnings
import zipfile
import zlib

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import nnfast
import nnfast.io
import nnfast.reference
from nnfast.optimizers import SGD, Adam, AdamW

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


def bits_differ(actual, expected, what):
    """Why two arrays are not the same bits, or ``None`` if they are."""
    if actual.dtype != expected.dtype or actual.shape != expected.shape:
        return f"{what}: {actual.dtype}{actual.shape} against {expected.dtype}{expected.shape}"
    if actual.tobytes() != expected.tobytes():
        return f"{what}: values differ"
    return None


def net_difference(actual, expected):
    """How two nets differ (class, options, parameters, optimizer state), or ``None`` if not at all.

    A predicate rather than a chain of asserts: a test that expects most
    comparisons to fail must not pay for pytest's explanation of each, which
    on CI (where it is not truncated) diffs megabyte-long byte strings.
    """
    if type(actual) is not type(expected):
        return f"class: {type(actual).__name__} against {type(expected).__name__}"
    for option in ("layers", "activation", "bias", "loss_name", "dtype", "negative_slope", "_init", "_init_std"):
        if getattr(actual, option) != getattr(expected, option):
            return f"{option}: {getattr(actual, option)!r} against {getattr(expected, option)!r}"
    difference = bits_differ(actual._params, expected._params, "params")
    if difference or expected.optimizer is None:
        return difference or (None if actual.optimizer is None else "an optimizer where none was expected")
    ours, theirs = actual.optimizer, expected.optimizer
    if type(ours) is not type(theirs):
        return f"optimizer: {type(ours).__name__} against {type(theirs).__name__}"
    if ours._fields() != theirs._fields():
        return f"optimizer fields: {ours._fields()!r} against {theirs._fields()!r}"
    if ours.step_count != theirs.step_count:
        return f"step count: {ours.step_count} against {theirs.step_count}"
    if theirs.buffers is None:
        return None if ours.buffers is None else "optimizer buffers where none were expected"
    return bits_differ(ours.buffers, theirs.buffers, "optimizer buffers")


def assert_same_bits(actual, expected, what):
    difference = bits_differ(actual, expected, what)
    assert difference is None, difference


def assert_same_net(actual, expected):
    """Same class, options, parameters and optimizer state, bit for bit."""
    difference = net_difference(actual, expected)
    assert difference is None, difference


def same_net(actual, expected):
    return net_difference(actual, expected) is None


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


def entries_of(path):
    with np.load(path, allow_pickle=False) as contents:
        return {key: contents[key] for key in contents.files}


def npy_bytes(array):
    """``array`` as a .npy file (object arrays pickled into it, as np.save would)."""
    buffer = io.BytesIO()
    np.lib.format.write_array(buffer, np.asanyarray(array), allow_pickle=True)
    return buffer.getvalue()


def npy_with_header(header, data):
    """A version 1.0 .npy file with the header dict literal ``header`` (padded as numpy does) and ``data``."""
    text = header.encode("latin1")
    text += b" " * (-(len(text) + 11) % 64) + b"\n"
    return b"\x93NUMPY\x01\x00" + struct.pack("<H", len(text)) + text + data


def members_of(data):
    """The (name, bytes) members of the archive ``data``, in order."""
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        return [(info.filename, archive.read(info)) for info in archive.infolist()]


def raw_zip(members):
    """A zip archive written by hand: ``members`` are (name, bytes as stored, method, declared size, crc).

    Nothing is checked or compressed, so the archive can say anything.
    """
    out, directory = bytearray(), bytearray()
    for name, data, method, size, crc in members:
        encoded = name.encode()
        offset = len(out)
        out += struct.pack("<4s5H3L2H", b"PK\x03\x04", 20, 0, method, 0, 0x21, crc, len(data),
                           size, len(encoded), 0) + encoded + data
        directory += struct.pack("<4s6H3L5H2L", b"PK\x01\x02", 20, 20, 0, method, 0, 0x21, crc, len(data),
                                 size, len(encoded), 0, 0, 0, 0, 0, offset) + encoded
    end = struct.pack("<4s4H2LH", b"PK\x05\x06", 0, 0, len(members), len(members), len(directory), len(out), 0)
    return bytes(out + directory + end)


def stored_zip(members):
    """An uncompressed archive of the (name, bytes) ``members``, duplicates allowed."""
    return raw_zip([(name, data, zipfile.ZIP_STORED, len(data), zlib.crc32(data)) for name, data in members])


# Where each field of a central directory entry lies, and its struct format.
DIRECTORY_FIELDS = {"flag_bits": (8, "<H"), "compress_type": (10, "<H"), "CRC": (16, "<L"),
                    "compress_size": (20, "<L"), "file_size": (24, "<L"), "header_offset": (42, "<L")}


def patch_directory(data, member, **fields):
    """``data`` with fields of ``member``'s central directory entry replaced."""
    data = bytearray(data)
    encoded = member.encode()
    at = data.find(b"PK\x01\x02")
    while at >= 0:
        length = struct.unpack_from("<H", data, at + 28)[0]
        if data[at + 46 : at + 46 + length] == encoded:
            for field, value in fields.items():
                offset, fmt = DIRECTORY_FIELDS[field]
                struct.pack_into(fmt, data, at + offset, value)
            return bytes(data)
        at = data.find(b"PK\x01\x02", at + 1)
    raise AssertionError(f"no directory entry for {member}")


def peak_memory(function, *args):
    """Run ``function(*args)``; return (its exception or None, peak bytes traced meanwhile)."""
    tracemalloc.start()
    try:
        function(*args)
    except Exception as error:
        return error, tracemalloc.get_traced_memory()[1]
    finally:
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
    return None, peak


def assert_invalid(path, match):
    with pytest.raises(ValueError, match=match) as excinfo:
        nnfast.io.load(path)
    assert str(excinfo.value).startswith(f"{os.fspath(path)} is not a valid nnfast file: "), excinfo.value
    return excinfo.value


@pytest.fixture(scope="module")
def good():
    """A trained Adam net, its file's bytes and entries."""
    net = trained_net()
    with tempfile.TemporaryDirectory() as directory:
        path = nnfast.io.save(net, os.path.join(directory, "good.npz"))
        return net, path.read_bytes(), entries_of(path)


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
        unchanged = path.read_bytes() == before  # a bool: see net_difference
        assert unchanged, "the old file changed"
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
        # At least 25 kills, and more (up to 200) until some kill has interrupted a
        # save in progress and both nets have been seen, so that the test cannot
        # pass without having tested anything when the timing is unlucky.
        for kills in range(200):
            if kills >= 25 and left_behind >= 1 and set(held) == {0, 1}:
                break
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
    unchanged = existing.read_bytes() == before  # a bool: see net_difference
    assert unchanged, "the old file changed"
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


# -- load: hostile archives ---------------------------------------------------------------------


def replace_member(data, name, content):
    """The archive ``data`` with member ``name``'s bytes replaced by ``content`` (stored, CRC correct)."""
    return stored_zip([(member, content if member == name else old) for member, old in members_of(data)])


def assert_refused_cheaply(path, match, limit=4 << 20):
    """Loading ``path`` raises ValueError matching ``match``, quickly, with a peak allocation under ``limit``."""
    start = time.perf_counter()
    error, peak = peak_memory(nnfast.io.load, path)
    elapsed = time.perf_counter() - start
    assert isinstance(error, ValueError), repr(error)
    assert str(error).startswith(f"{path} is not a valid nnfast file: ")
    assert match in str(error), str(error)
    assert peak < limit, f"peak allocation {peak} bytes"
    assert elapsed < 2, f"took {elapsed:.1f} s"
    return error


def deflate_bomb(prefix, size):
    """A raw deflate stream that inflates to ``prefix`` and zeros, ``size`` bytes in all (a multiple of 16 MiB).

    Made of independently compressed 16 MiB blocks (each ending in a full
    flush, so later ones refer to nothing earlier): compressing one block
    of zeros once and repeating it builds a gigabyte bomb in milliseconds.
    """
    block = 1 << 24
    head = zlib.compressobj(9, zlib.DEFLATED, -15)
    first = head.compress(prefix + bytes(block - len(prefix))) + head.flush(zlib.Z_FULL_FLUSH)
    zeros = zlib.compressobj(9, zlib.DEFLATED, -15)
    repeated = zeros.compress(bytes(block)) + zeros.flush(zlib.Z_FULL_FLUSH)
    return first + repeated * (size // block - 1) + zlib.compressobj(9, zlib.DEFLATED, -15).flush()


def test_a_compressed_member_that_would_inflate_to_gigabytes(good, tmp_path):
    """The issue's 1.5 MB file that made np.load use gigabytes: refused from the directory alone."""
    _, data, _ = good
    size = 1 << 30
    header = npy_with_header(npy_header("<f8", (size // 8,)), b"")
    bomb = deflate_bomb(header, size)
    inflater = zlib.decompressobj(-15)  # the bomb is real: it inflates far beyond its size
    assert len(inflater.decompress(bomb[:200_000], 64 << 20)) == 64 << 20
    members = [(name, content, zipfile.ZIP_STORED, len(content), zlib.crc32(content))
               for name, content in members_of(data) if name != "params.npy"]
    members.append(("params.npy", bomb, zipfile.ZIP_DEFLATED, size - 1, 0))
    path = tmp_path / "bomb.npz"
    path.write_bytes(raw_zip(members))
    assert path.stat().st_size < (2 << 20)
    assert_refused_cheaply(path, "entry 'params' is compressed")


def test_a_compressed_archive_is_refused(good, tmp_path):
    """np.savez_compressed files are refused: nnfast reads only the uncompressed archives it writes."""
    _, _, entries = good
    path = tmp_path / "compressed.npz"
    np.savez_compressed(path, **entries)
    assert_refused_cheaply(path, "is compressed (zip method 8)")


def npy_header(descr, shape, fortran_order=False):
    return f"{{'descr': {descr!r}, 'fortran_order': {fortran_order}, 'shape': {shape!r}, }}"


# Per case: the member, its header's descr, shape and fortran_order, and what the error says.
HUGE_HEADERS = {
    "params": ("params.npy", "<f8", (10**9,), False, "declares shape (1000000000,)"),
    "buffers": ("optimizer_buffers.npy", "<f8", (2, 10**10), False, "160000000000 bytes"),
    "2-d params": ("params.npy", "<f8", (10**5, 10**5), True, "declares shape (100000, 100000)"),
    "activations": ("activations.npy", "<U100", (10**12,), False, "declares shape"),
    "format": ("format.npy", "<U100000000", (), False, "declares shape () of <U100000000 (400000000 bytes)"),
    "negative shape": ("layers.npy", "<i8", (-4,), False, "negative length"),
    "empty elements": ("activations.npy", "<U0", (10**12,), False, "which no nnfast entry has"),
}


@pytest.mark.parametrize("case", list(HUGE_HEADERS))
def test_a_header_declaring_huge_data(good, tmp_path, case):
    _, data, _ = good
    member, descr, shape, fortran_order, match = HUGE_HEADERS[case]
    path = tmp_path / "huge.npz"
    path.write_bytes(replace_member(data, member, npy_with_header(npy_header(descr, shape, fortran_order), bytes(800))))
    assert_refused_cheaply(path, match)


@pytest.mark.parametrize("entry", ["bias", "activations"])
def test_per_layer_entries_of_millions_are_refused_from_their_headers(good, tmp_path, entry):
    """bias and activations must have one element per (hidden) layer: checked before their data is read."""
    _, data, _ = good
    value = np.ones(2_000_000, bool) if entry == "bias" else np.array(["relu"] * 500_000)
    path = tmp_path / "long.npz"
    path.write_bytes(replace_member(data, f"{entry}.npy", npy_bytes(value)))
    assert_refused_cheaply(path, f"entry '{entry}' must be an array of shape", limit=1 << 20)


def test_an_architecture_of_billions_of_parameters_is_checked_before_reading(good, tmp_path):
    """Layers and params header agree on 10**10 parameters; the missing data is noticed from the sizes."""
    _, data, _ = good
    n_params = 100_000 * 100_000 + 100_000
    content = replace_member(data, "layers.npy", npy_bytes(np.array([100_000, 100_000])))
    content = replace_member(content, "activations.npy", npy_bytes(np.array([], dtype=np.str_)))
    content = replace_member(content, "bias.npy", npy_bytes(np.array([True])))
    content = replace_member(content, "params.npy", npy_with_header(npy_header("<f8", (n_params,)), bytes(800)))
    path = tmp_path / "huge.npz"
    path.write_bytes(content)
    assert_refused_cheaply(path, f"({n_params * 8} bytes), but holds 800 bytes")


def test_a_huge_npy_header_length(good, tmp_path):
    _, data, _ = good
    member = b"\x93NUMPY\x02\x00" + struct.pack("<L", 4_000_000_000) + b"{" + bytes(100)
    path = tmp_path / "header.npz"
    path.write_bytes(replace_member(data, "params.npy", member))
    assert_refused_cheaply(path, "its .npy header declares 4000000000 bytes")


SIZE_PATCHES = {
    "both sizes beyond the file": (dict(compress_size=2**31, file_size=2**31), "more than the file's"),
    "uncompressed size differs": (dict(file_size=2**31), "declares 2147483648 bytes for its"),
    "offset beyond the file": (dict(header_offset=2**31), "more than the file's"),
    "encrypted": (dict(flag_bits=1), "entry 'params' is encrypted"),
    "compressed with bzip2": (dict(compress_type=zipfile.ZIP_BZIP2), "is compressed (zip method 12)"),
}


@pytest.mark.parametrize("case", list(SIZE_PATCHES))
def test_a_directory_entry_that_lies(good, tmp_path, case):
    _, data, _ = good
    fields, match = SIZE_PATCHES[case]
    path = tmp_path / "lying.npz"
    path.write_bytes(patch_directory(data, "params.npy", **fields))
    assert_refused_cheaply(path, match)


def test_duplicate_members(good, tmp_path):
    _, data, entries = good
    members = members_of(data)
    other = npy_bytes(entries["params"] + 1.0)
    path = tmp_path / "twice.npz"
    path.write_bytes(stored_zip(members + [("params.npy", other)]))
    assert_refused_cheaply(path, "it holds entry 'params' twice")
    # The duplicate first, so neither the first nor the last one wins silently.
    path.write_bytes(stored_zip([("params.npy", other)] + members))
    assert_refused_cheaply(path, "twice")


def test_unknown_members(good, tmp_path):
    _, data, _ = good
    path = tmp_path / "extra.npz"
    path.write_bytes(stored_zip(members_of(data) + [("notes.npy", npy_bytes(np.array("hi")))]))
    assert_refused_cheaply(path, "unexpected entries 'notes'")
    path.write_bytes(stored_zip(members_of(data) + [("params", b"")]))
    assert_refused_cheaply(path, "its member 'params' is not a NumPy array")


def test_a_central_directory_of_thousands_of_entries(tmp_path):
    path = tmp_path / "many.npz"
    path.write_bytes(stored_zip([(f"{index}.npy", b"") for index in range(5000)]))
    assert_refused_cheaply(path, "its central directory takes", limit=1 << 20)


def test_bytes_after_the_archive_and_a_comment(good, tmp_path):
    _, data, _ = good
    path = tmp_path / "tail.npz"
    path.write_bytes(data + b"trailing")
    assert_refused_cheaply(path, "does not end with a zip end record")
    buffer = io.BytesIO(data)
    with zipfile.ZipFile(buffer, "a") as archive:
        archive.comment = b"hello"
    path.write_bytes(buffer.getvalue())
    assert_refused_cheaply(path, "does not end with a zip end record")


LYING_SHAPES = {
    "one more element": (lambda n: (n + 1,), "but holds"),
    "one element fewer": (lambda n: (n - 1,), "but holds"),
    "2-d": (lambda n: (1, n), "entry 'params' has shape (1, {n})"),
    "0-d": (lambda n: (), "but holds"),
}


@pytest.mark.parametrize("case", list(LYING_SHAPES))
def test_an_npy_header_lying_about_the_shape(good, tmp_path, case):
    net, data, entries = good
    shape, match = LYING_SHAPES[case]
    params = entries["params"]
    path = tmp_path / "lying.npz"
    member = npy_with_header(npy_header("<f8", shape(params.size)), params.tobytes())
    path.write_bytes(replace_member(data, "params.npy", member))
    assert_refused_cheaply(path, match.format(n=params.size))


def test_fortran_order_is_read_as_such(good, tmp_path):
    """A hand-written file may store the 2-d buffers in Fortran order: they load with the right values."""
    net, data, entries = good
    fortran = np.asfortranarray(entries["optimizer_buffers"])
    member = npy_bytes(fortran)
    assert b"'fortran_order': True" in member
    path = tmp_path / "fortran.npz"
    path.write_bytes(replace_member(data, "optimizer_buffers.npy", member))
    loaded = nnfast.io.load(path)
    assert_same_net(loaded, net)
    assert loaded.optimizer.buffers.flags.c_contiguous and loaded.optimizer.buffers.flags.writeable


def member_data_at(data, info):
    """Where the data of the member ``info`` starts in the archive ``data``."""
    name_length, extra_length = struct.unpack_from("<2H", data, info.header_offset + 26)
    return info.header_offset + 30 + name_length + extra_length


def test_a_flipped_bit_in_any_member_is_detected(good, tmp_path):
    """Every member's CRC-32 is checked: a flip in the last byte of each one's data is refused."""
    _, data, _ = good
    path = tmp_path / "flipped.npz"
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        infos = archive.infolist()
    assert len(infos) == 21
    for info in infos:
        flipped = bytearray(data)
        flipped[member_data_at(data, info) + info.compress_size - 1] ^= 0x01
        path.write_bytes(bytes(flipped))
        assert_invalid(path, f"cannot read its entry '{info.filename[:-4]}' \\(BadZipFile: Bad CRC-32")


@pytest.mark.parametrize("member", ["params.npy", "optimizer_buffers.npy"])
@pytest.mark.parametrize("where", [0.001, 0.5, 0.999])
def test_a_flipped_bit_in_a_large_member_is_detected(tmp_path, member, where):
    """In members far larger than zipfile's read-ahead, the data read itself must reach the CRC check."""
    path = nnfast.io.save(big_net(1), tmp_path / "big.npz")
    data = bytearray(path.read_bytes())
    with zipfile.ZipFile(path) as archive:
        info = archive.getinfo(member)
    assert info.compress_size > 100_000
    data[member_data_at(data, info) + int(where * info.compress_size)] ^= 0x40
    path.write_bytes(bytes(data))
    assert_invalid(path, f"cannot read its entry '{member[:-4]}' \\(BadZipFile: Bad CRC-32")


# -- load never executes code from the file --------------------------------------------------------


class Payload:
    """Unpickling this makes the directory ``marker``: proof that code ran."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return (os.mkdir, (self.marker,))


def forbid_unpickling(monkeypatch):
    def refuse(*args, **kwargs):
        raise AssertionError("load unpickled something")

    for name in ("loads", "load", "Unpickler"):
        monkeypatch.setattr(pickle, name, refuse)


def object_member(marker):
    return npy_bytes(np.array([Payload(marker), "relu"], dtype=object))


def structured_member(marker):
    array = np.zeros(2, dtype=[("x", "<f8"), ("y", "O")])
    array["y"] = [Payload(marker), None]
    return npy_bytes(array)


def raw_pickle_member(marker):
    return pickle.dumps(Payload(marker))


def code_in_header_member(marker):
    header = f"{{'descr': __import__('os').mkdir({str(marker)!r}), 'fortran_order': False, 'shape': (45,), }}"
    return npy_with_header(header, bytes(360))


EVIL_MEMBERS = {
    "object array": object_member,
    "structured dtype with an object field": structured_member,
    "a bare pickle": raw_pickle_member,
    "code in the .npy header": code_in_header_member,
}


@pytest.mark.parametrize("member", ["params", "activations", "optimizer_buffers", "format"])
@pytest.mark.parametrize("evil", list(EVIL_MEMBERS))
def test_nothing_in_a_file_is_executed(good, tmp_path, monkeypatch, evil, member):
    _, data, _ = good
    marker = tmp_path / "code_ran"
    content = EVIL_MEMBERS[evil](marker)
    path = tmp_path / "evil.npz"
    path.write_bytes(replace_member(data, f"{member}.npy", content))
    forbid_unpickling(monkeypatch)
    assert_refused_cheaply(path, f"entry '{member}'")
    assert not marker.exists()
    monkeypatch.undo()
    if evil != "code in the .npy header":  # the payload is live: unpickling it runs it
        pickle.loads(content[content.index(b"\x80"):] if content.startswith(b"\x93NUMPY") else content)
        assert marker.exists()


def test_a_whole_file_that_is_a_pickle(tmp_path, monkeypatch):
    marker = tmp_path / "code_ran"
    path = tmp_path / "evil.npz"
    path.write_bytes(pickle.dumps(Payload(marker)))
    forbid_unpickling(monkeypatch)
    assert_refused_cheaply(path, "it is not an .npz archive")
    assert not marker.exists()


# -- optimizer state that no training produces ------------------------------------------------------


def edit_buffers(row, index, value):
    def edit(entries):
        buffers = entries["optimizer_buffers"].copy()
        buffers[row, index] = value
        entries["optimizer_buffers"] = buffers
    return edit


def set_entries(**values):
    def edit(entries):
        for key, value in values.items():
            if value is None:
                del entries[key]
            else:
                entries[key] = value
    return edit


BAD_STATES = {
    "nan first moment": (edit_buffers(0, 3, np.nan), "'optimizer_buffers' must not be NaN, got nan in row 0 at index 3"),
    "nan second moment": (edit_buffers(1, 0, np.nan), "'optimizer_buffers' must not be NaN, got nan in row 1 at index 0"),
    "infinite first moment": (edit_buffers(0, 5, -np.inf), "'optimizer_buffers' row 0 (the first moments) must be finite, got -inf at index 5"),
    "negative second moment": (edit_buffers(1, 2, -1e-3), "'optimizer_buffers' row 1 (the second moments) must be >= 0, got -0.001 at index 2"),
    "second moment -inf": (edit_buffers(1, 2, -np.inf), "row 1 (the second moments) must be >= 0, got -inf"),
    "step count 2**64-1 as uint64": (set_entries(optimizer_step_count=np.array(2**64 - 1, dtype=np.uint64)), f"'optimizer_step_count' must be <= 2**53 = {2**53}"),
    "step count 2**63-1": (set_entries(optimizer_step_count=np.array(2**63 - 1)), "'optimizer_step_count' must be <= 2**53"),
    "step count 2**53+1": (set_entries(optimizer_step_count=np.array(2**53 + 1)), f"got {2**53 + 1}"),
    "step count -1": (set_entries(optimizer_step_count=np.array(-1)), "'optimizer_step_count' must be >= 0, got -1"),
    "step count int8 -1": (set_entries(optimizer_step_count=np.array(-1, dtype=np.int8)), "'optimizer_step_count' must be >= 0, got -1"),
    "steps without buffers": (set_entries(optimizer_buffers=None), "'optimizer_step_count' must be 0 while there are no moment buffers, got 12"),
    "buffers but no steps": (set_entries(optimizer_step_count=np.array(0)), "'optimizer_buffers' must be all zero while the step count is 0"),
}


@pytest.mark.parametrize("case", list(BAD_STATES))
def test_optimizer_state_no_training_produces(good, tmp_path, case):
    _, _, entries = good
    edit, match = BAD_STATES[case]
    entries = dict(entries)
    edit(entries)
    path = tmp_path / "state.npz"
    np.savez(path, **entries)
    assert_invalid(path, re.escape(match))


def test_sgd_momentum_must_be_finite(tmp_path):
    net = trained_net(optimizer=SGD(1e-2, momentum=0.9))
    entries = entries_of(nnfast.io.save(net, tmp_path / "sgd.npz"))
    entries["optimizer_buffers"] = entries["optimizer_buffers"].copy()
    entries["optimizer_buffers"][0, 1] = np.inf
    np.savez(tmp_path / "bad.npz", **entries)
    assert_invalid(tmp_path / "bad.npz", r"'optimizer_buffers' row 0 \(the momentum\) must be finite, got inf at index 1")


def test_the_largest_step_count_and_a_zero_state_load(good, tmp_path):
    net, _, entries = good
    entries = dict(entries, optimizer_step_count=np.array(2**53, dtype=np.uint64))
    np.savez(tmp_path / "edge.npz", **entries)
    assert nnfast.io.load(tmp_path / "edge.npz").optimizer.step_count == 2**53
    # fit(epochs=0) binds zero buffers without a step: step count 0 with zero buffers is real.
    fresh = nnfast.reference.Net([3, 2], seed=0)
    fresh.fit(np.zeros((4, 3)), np.zeros((4, 2)), epochs=0, optimizer=Adam())
    assert fresh.optimizer.step_count == 0 and not fresh.optimizer.buffers.any()
    assert_same_net(nnfast.io.load(nnfast.io.save(fresh, tmp_path / "fresh.npz")), fresh)


@pytest.mark.parametrize("net_class", [nnfast.Net, nnfast.reference.Net], ids=["fast", "reference"])
def test_an_infinite_second_moment_from_training_saves_and_loads(tmp_path, net_class):
    """Adam's v = beta2 v + (1 - beta2) g**2 overflows to +inf on huge float32 gradients while the
    update (m / inf = 0) stays finite: a state training reaches, so it must save and load."""
    net = net_class([1, 1], loss="sse", dtype="float32", seed=0)
    net.weights = [np.array([[0.5]])]
    x, y = np.array([[1e11]]), np.array([[0.0]])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # the reference's overflow, which is the point
        net.fit(x, y, epochs=2, optimizer=Adam(1e-3))
        assert np.isposinf(net.optimizer.buffers[1]).any() and np.isfinite(net._params).all()
        loaded = nnfast.io.load(nnfast.io.save(net, tmp_path / "inf.npz"))
        assert_same_net(loaded, net)
        assert_same_bits(loaded.fit(x, y, epochs=1).loss, net.fit(x, y, epochs=1).loss, "losses")
    assert_same_net(loaded, net)


SAVE_REFUSES = {
    "negative second moment": (lambda o: o.buffers.__setitem__((1, 0), -1.0), "buffers row 1 (the second moments) must be >= 0"),
    "nan": (lambda o: o.buffers.__setitem__((0, 0), np.nan), "buffers must not be NaN"),
    # Assigning it is refused (Optimizer.step_count); a fit advances the counter in place.
    "step count too large": (lambda o: o._step_counter.__setitem__(0, 2**53 + 1), "step_count must be <= 2**53"),
    "steps without buffers": (lambda o: setattr(o, "buffers", None), "step_count must be 0 while there are no moment buffers"),
}


@pytest.mark.parametrize("case", list(SAVE_REFUSES))
def test_save_refuses_the_same_states(tmp_path, case):
    net = trained_net()
    edit, match = SAVE_REFUSES[case]
    edit(net.optimizer)
    with pytest.raises(ValueError) as excinfo:
        nnfast.io.save(net, tmp_path / "net.npz")
    assert match in str(excinfo.value) and "reset_optimizer" in str(excinfo.value)
    assert not os.listdir(tmp_path)
    net.reset_optimizer()
    assert_same_net(nnfast.io.load(nnfast.io.save(net, tmp_path / "net.npz")), net)


# -- mutated files: refused, or exactly what they say -----------------------------------------------


@pytest.fixture(scope="module")
def originals():
    """Saved nets to mutate, with the bytes of their files: Adam, SGD with momentum, no optimizer, fast float32."""
    nets = [
        trained_net(),
        trained_net(optimizer=SGD(1e-2, momentum=0.9, nesterov=True)),
        nnfast.reference.Net([2, 3, 1], loss="sse", seed=0),
    ]
    nets.append(nnfast.Net([3, 4, 3], activation="sigmoid", loss="cross_entropy", dtype="float32", seed=1))
    nets[3].fit(np.ones((4, 3)), np.arange(4) % 3, epochs=2, optimizer=AdamW(1e-2))
    with tempfile.TemporaryDirectory() as directory:
        return [(net, nnfast.io.save(net, os.path.join(directory, f"{i}.npz")).read_bytes())
                for i, net in enumerate(nets)]


MUTATION_SETTINGS = settings(suppress_health_check=[HealthCheck.function_scoped_fixture], deadline=None)


def load_mutated(tmp_path, data):
    """Load ``data`` from a file; return the net or the ValueError, failing on anything else."""
    path = tmp_path / "mutated.npz"
    path.write_bytes(data)
    start = time.perf_counter()
    tracemalloc.start()
    try:
        result = nnfast.io.load(path)
    except ValueError as error:  # PathNotFoundError and PathIsADirectoryError are ValueErrors too
        assert str(error).startswith(f"{path} is not a valid nnfast file: "), str(error)
        result = error
    finally:
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
    assert peak < 4 * len(data) + (1 << 20), f"peak allocation {peak} bytes for a {len(data)}-byte file"
    assert time.perf_counter() - start < 5
    return result


@MUTATION_SETTINGS
@given(which=st.integers(0, 3), cut=st.floats(0, 1, exclude_max=True))
def test_a_truncated_file_is_refused(tmp_path, originals, which, cut):
    _, data = originals[which]
    result = load_mutated(tmp_path, data[: int(cut * len(data))])
    assert isinstance(result, ValueError)


@MUTATION_SETTINGS
@given(which=st.integers(0, 3), flips=st.lists(st.tuples(st.floats(0, 1, exclude_max=True), st.integers(1, 255)),
                                               min_size=1, max_size=3))
def test_flipped_bytes_are_refused_or_immaterial(tmp_path, originals, which, flips):
    """A flip anywhere: refused, or (in zip metadata such as a timestamp) the very same net."""
    net, data = originals[which]
    mutated = bytearray(data)
    for where, mask in flips:
        mutated[int(where * len(data))] ^= mask
    result = load_mutated(tmp_path, bytes(mutated))
    if not isinstance(result, ValueError):
        assert_same_net(result, net)


@MUTATION_SETTINGS
@given(which=st.integers(0, 3), operation=st.sampled_from(["swap", "duplicate", "remove", "reverse"]),
       first=st.integers(0, 100), second=st.integers(0, 100))
def test_reordered_duplicated_or_removed_members(tmp_path, originals, which, operation, first, second):
    """Reordering members changes nothing; a duplicate or a missing one is refused."""
    net, data = originals[which]
    members = members_of(data)
    i, j = first % len(members), second % len(members)
    if operation == "swap":
        members[i], members[j] = members[j], members[i]
    elif operation == "reverse":
        members.reverse()
    elif operation == "duplicate":
        members.insert(j, members[i])
    else:
        del members[i]
    result = load_mutated(tmp_path, stored_zip(members))
    if operation in ("swap", "reverse"):
        assert not isinstance(result, ValueError), result
        assert_same_net(result, net)
    else:
        assert isinstance(result, ValueError)


EDIT_DTYPES = ["int8", "int64", "uint64", ">i4", "float32", "float64", ">f8", "bool", "<U7", "complex128"]
EDIT_SHAPES = [None, (), (1,), (2,), (3,), (4,), (2, 2), (0,)]  # None: the entry's own shape
EDIT_STRINGS = ["nnfast", "relu", "tanh", "sse", "Adam", "SGD", "none", "float32", "float64",
                "nnfast.Net", "auto", "normal", "cross_entropy"]


@MUTATION_SETTINGS
@given(which=st.integers(0, 3), entry=st.integers(0, 100), dtype=st.sampled_from(EDIT_DTYPES),
       shape=st.sampled_from(EDIT_SHAPES), seed=st.integers(0, 2**32 - 1), rename=st.booleans())
def test_hand_edited_entries_are_refused_or_loaded_as_written(tmp_path, originals, which, entry, dtype, shape,
                                                                seed, rename):
    """An entry replaced by another value, dtype or shape, or two entries' names swapped: the file is
    refused, or the loaded net is exactly what the edited file says (saving it again gives its entries)."""
    _, data = originals[which]
    with np.load(io.BytesIO(data), allow_pickle=False) as contents:
        entries = {key: contents[key] for key in contents.files}
    names = sorted(entries)
    key = names[entry % len(names)]
    rng = np.random.default_rng(seed)
    if rename:
        other = names[seed % len(names)]
        entries[key], entries[other] = entries[other], entries[key]
    else:
        size = entries[key].shape if shape is None else shape
        if dtype.startswith("<U"):
            value = rng.choice(EDIT_STRINGS, size=size)
        elif dtype == "bool":
            value = rng.integers(0, 2, size=size).astype(bool)
        else:
            value = rng.choice([0, 1, 2, 3, 5, -1, 0.5, 1e-3, 1e300, np.inf, np.nan], size=size)
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", RuntimeWarning)
                value = np.where(np.isfinite(value), value, 0) if np.dtype(dtype).kind in "iub" else value
                value = np.asarray(value).astype(dtype)
        entries[key] = value
    buffer = io.BytesIO()
    np.savez(buffer, **entries)
    result = load_mutated(tmp_path, buffer.getvalue())
    if isinstance(result, ValueError):
        return
    saved = entries_of(nnfast.io.save(result, tmp_path / "again.npz"))
    assert set(saved) == set(entries)
    for name in saved:
        if name != "format_version":  # a file of an earlier version that loads is saved as version 3
            assert saved[name].tolist() == entries[name].tolist(), name
