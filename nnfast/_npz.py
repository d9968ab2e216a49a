"""A bounded reader of uncompressed ``.npz`` archives, for ``nnfast.load``.

``Archive`` reads the members of a ``.npz`` file without trusting
anything the file declares: it refuses compressed, encrypted, duplicated
or out-of-file members and oversized directories and ``.npy`` headers
before reading any data, never unpickles (an object dtype is refused
unread), and allocates for a member exactly the bytes the file really
holds for it, checking its CRC-32. What is wrong raises ``Invalid``,
whose message ``nnfast.io`` puts after the file's name.
"""
import io
import math
import struct
import threading
import zipfile
import zlib

import numpy as np
from numpy.lib import format as npy_format

__all__ = ["Archive", "Invalid"]


class Invalid(Exception):
    """What is wrong with a file, before the path is put in front."""


# What reading a damaged archive can raise. OSError is among them (a seek
# to an offset a corrupted directory names, say); a file that cannot be
# opened at all raises before any of this is caught, as itself.
READ_ERRORS = (zipfile.BadZipFile, OSError, EOFError, ValueError, zlib.error, struct.error,
                NotImplementedError, RuntimeError)

# How .npz (zip) and .npy files begin.
_ZIP_MAGICS = (b"PK\x03\x04", b"PK\x05\x06")
_NPY_MAGIC = b"\x93NUMPY"

# The zip records at the end of an archive (zipfile's structEndArchive,
# structEndArchive64Locator and structEndArchive64).
_END_RECORD = struct.Struct("<4s4H2LH")
_END_SIGNATURE = b"PK\x05\x06"
_END64_LOCATOR = struct.Struct("<4sLQL")
_END64_LOCATOR_SIGNATURE = b"PK\x06\x07"
_END64_RECORD = struct.Struct("<4sQ2H2L4Q")
_END64_SIGNATURE = b"PK\x06\x06"
_LOCAL_HEADER_SIZE = 30  # a member's local header before its name and extra field

# Bounds that no file save writes comes near: an nnfast archive has at most
# 19 members, whose central directory takes about 2 KiB, and .npy headers
# of about 128 bytes (numpy's own limit is 10000). Data is read in chunks
# of _READ_CHUNK bytes straight into its array.
_MAX_DIRECTORY_BYTES = 64 * 1024
_MAX_NPY_HEADER_BYTES = 10000
_READ_CHUNK = 1 << 20
# NumPy parses .npy headers with ast.literal_eval, which CPython 3.11 cannot
# run in two threads at once: it may raise "SystemError: AST constructor
# recursion depth mismatch" (python/cpython#106905). Loads from several
# threads take turns for that step only; a header is at most 10 kB.
_HEADER_PARSE_LOCK = threading.Lock()


def _read_exactly(stream, size, what):
    """``size`` bytes from ``stream`` (``size`` small), or Invalid if it ends first."""
    data = stream.read(size)
    if len(data) != size:
        raise Invalid(f"it is truncated: {what} ends after {len(data)} of {size} bytes")
    return data


class _Header:
    """What the ``.npy`` header of a member declares."""

    def __init__(self, raw, shape, fortran_order, dtype):
        self.raw = raw  # the header's bytes, magic string included; the data follows
        self.shape = shape
        self.fortran_order = fortran_order
        self.dtype = dtype
        self.count = math.prod(shape)  # Python ints: no overflow, whatever the header says
        self.nbytes = self.count * dtype.itemsize


class Archive:
    """The ``.npy`` members of an uncompressed ``.npz`` archive, read with bounded allocations.

    Opening checks the archive's directory: only ``.npy`` members, each
    stored once and uncompressed, each lying within the file. ``header``
    then reads and checks a member's ``.npy`` header alone; ``read`` reads
    its data, exactly the bytes the header declares, to the end of the
    member so that zipfile verifies its CRC-32.
    """

    def __init__(self, file, size):
        self._size = size
        head = file.read(len(_NPY_MAGIC))
        if not head:
            raise Invalid("it is empty")
        if head == _NPY_MAGIC:
            raise Invalid("it is a single .npy array, not an .npz archive")
        if not head.startswith(_ZIP_MAGICS):
            raise Invalid(f"it is not an .npz archive (it starts with {head!r})")
        self._check_end(file)
        file.seek(0)
        try:
            self._zip = zipfile.ZipFile(file)
            infos = self._zip.infolist()
        except READ_ERRORS as error:
            raise Invalid(f"cannot read it as an .npz archive ({type(error).__name__}: {error})") from error
        self._members = {}
        for info in infos:
            if not info.filename.endswith(".npy"):
                raise Invalid(f"its member {info.filename!r} is not a NumPy array (.npy)")
            name = info.filename[: -len(".npy")]
            if name in self._members:
                raise Invalid(f"it holds entry {name!r} twice")
            self._members[name] = info
            self._check_member(name, info)
        self._headers = {}

    def _check_end(self, file):
        """Check that the file ends with a zip end record (without comment) naming a small directory.

        zipfile reads the whole central directory at once and makes an
        object per entry in it; bounding its size bounds that work.
        """
        unreadable = "cannot read it as an .npz archive"
        if self._size < _END_RECORD.size:
            raise Invalid(f"{unreadable} (it is too short to end with a zip end record)")
        file.seek(self._size - _END_RECORD.size)
        end = _END_RECORD.unpack(_read_exactly(file, _END_RECORD.size, "the zip end record"))
        if end[0] != _END_SIGNATURE or end[-1] != 0:
            raise Invalid(f"{unreadable} (it does not end with a zip end record, as nnfast's files do)")
        directory_size = end[5]
        locator_at = self._size - _END_RECORD.size - _END64_LOCATOR.size
        if locator_at >= _END64_RECORD.size:  # zipfile takes the sizes from a zip64 record if there is one
            file.seek(locator_at)
            locator = _END64_LOCATOR.unpack(_read_exactly(file, _END64_LOCATOR.size, "the zip64 locator"))
            if locator[0] == _END64_LOCATOR_SIGNATURE:
                file.seek(locator_at - _END64_RECORD.size)
                record = _END64_RECORD.unpack(_read_exactly(file, _END64_RECORD.size, "the zip64 end record"))
                if record[0] == _END64_SIGNATURE:
                    directory_size = record[8]
        if directory_size > _MAX_DIRECTORY_BYTES:
            raise Invalid(
                f"{unreadable} (its central directory takes {directory_size} bytes, an nnfast file's "
                f"at most {_MAX_DIRECTORY_BYTES})"
            )

    def _check_member(self, name, info):
        """Refuse a member that is compressed, encrypted, or not within the file."""
        if info.compress_type != zipfile.ZIP_STORED:
            raise Invalid(
                f"entry {name!r} is compressed (zip method {info.compress_type}); nnfast writes "
                f"uncompressed archives and reads only those"
            )
        if info.flag_bits & 0x1:
            raise Invalid(f"entry {name!r} is encrypted")
        if info.file_size != info.compress_size:
            raise Invalid(
                f"entry {name!r} is stored uncompressed but declares {info.file_size} bytes "
                f"for its {info.compress_size} stored"
            )
        end = info.header_offset + _LOCAL_HEADER_SIZE + info.compress_size
        if info.header_offset < 0 or end > self._size:
            raise Invalid(
                f"entry {name!r} declares {info.compress_size} bytes at offset {info.header_offset}, "
                f"more than the file's {self._size} bytes hold"
            )

    def names(self):
        """The entries' names (member names without ``.npy``)."""
        return list(self._members)

    def __contains__(self, name):
        return name in self._members

    def _open(self, name):
        return self._zip.open(self._members[name])

    def header(self, name):
        """The checked ``.npy`` header of entry ``name``; no data is read."""
        if name not in self._headers:
            try:
                with self._open(name) as stream:
                    self._headers[name] = self._read_header(name, stream)
            except READ_ERRORS as error:
                raise Invalid(f"cannot read its entry {name!r} ({type(error).__name__}: {error})") from error
        return self._headers[name]

    def _read_header(self, name, stream):
        """Read and check the ``.npy`` header at the start of ``stream``, the member of entry ``name``."""
        magic = _read_exactly(stream, len(_NPY_MAGIC) + 2, f"the .npy header of entry {name!r}")
        if magic[: len(_NPY_MAGIC)] != _NPY_MAGIC:
            raise Invalid(f"cannot read its entry {name!r}: it is not a .npy array (it starts with {magic!r})")
        version = (magic[-2], magic[-1])
        if version not in ((1, 0), (2, 0)):
            raise Invalid(
                f"cannot read its entry {name!r}: .npy format version {version}, nnfast reads (1, 0) and (2, 0)"
            )
        length_bytes = _read_exactly(stream, 2 if version == (1, 0) else 4, f"the .npy header of entry {name!r}")
        length = int.from_bytes(length_bytes, "little")
        if length > _MAX_NPY_HEADER_BYTES:
            raise Invalid(f"cannot read its entry {name!r}: its .npy header declares {length} bytes, "
                           f"more than {_MAX_NPY_HEADER_BYTES}")
        text = _read_exactly(stream, length, f"the .npy header of entry {name!r}")
        read_header = npy_format.read_array_header_1_0 if version == (1, 0) else npy_format.read_array_header_2_0
        try:
            # The header is a Python literal; numpy parses it with ast.literal_eval, which evaluates nothing.
            with _HEADER_PARSE_LOCK:
                shape, fortran_order, dtype = read_header(io.BytesIO(length_bytes + text),
                                                          max_header_size=_MAX_NPY_HEADER_BYTES)
        except (ValueError, TypeError, OverflowError, RecursionError) as error:
            raise Invalid(f"cannot read its entry {name!r}: its .npy header is invalid ({error})") from error
        if dtype.hasobject:
            raise Invalid(
                f"cannot read its entry {name!r}: its dtype {dtype} holds Python objects (pickles), which an "
                f"nnfast file never does; refused unread"
            )
        if dtype.kind not in "biufU" or dtype.itemsize == 0:
            raise Invalid(f"entry {name!r} has dtype {dtype}, which no nnfast entry has")
        if any(dimension < 0 for dimension in shape):
            raise Invalid(f"entry {name!r} declares a negative length in its shape {shape}")
        header = _Header(magic + length_bytes + text, shape, fortran_order, dtype)
        stored = self._members[name].file_size - len(header.raw)
        if header.nbytes != stored:
            raise Invalid(
                f"entry {name!r} declares shape {shape} of {dtype} ({header.nbytes} bytes), "
                f"but holds {stored} bytes of data"
            )
        return header

    def read(self, name):
        """The array of entry ``name``: exactly the bytes its header declares, checksum verified."""
        header = self.header(name)
        raw = np.empty(header.count, dtype=header.dtype)  # header.nbytes, which the file holds
        destination = raw.view(np.uint8)
        try:
            with self._open(name) as stream:
                if stream.read(len(header.raw)) != header.raw:
                    raise Invalid(f"cannot read its entry {name!r}: its .npy header changed while it was read")
                done = 0
                while done < header.nbytes:
                    chunk = stream.read(min(_READ_CHUNK, header.nbytes - done))
                    if not chunk:
                        raise EOFError(f"the data ends after {done} of {header.nbytes} bytes")
                    destination[done : done + len(chunk)] = np.frombuffer(chunk, dtype=np.uint8)
                    done += len(chunk)
                # Reading to the end of the member is what makes zipfile compare the CRC-32.
                if stream.read(1):
                    raise Invalid(f"cannot read its entry {name!r}: it holds more than its header declares")
        except READ_ERRORS as error:
            raise Invalid(f"cannot read its entry {name!r} ({type(error).__name__}: {error})") from error
        return raw.reshape(header.shape, order="F" if header.fortran_order else "C")
