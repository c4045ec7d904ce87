"""RootFS: the machine's paths resolve inside the root (a chroot, without chroot), so a
hostile disk cannot redirect hostmedic to the host's own files, hang it on a FIFO, or
make it read without bound."""

import errno
import os

import pytest

from hostmedic.collectors.rootfs import RootFS


@pytest.fixture
def disk(tmp_path):
    (tmp_path / "usr" / "bin").mkdir(parents=True)
    (tmp_path / "usr" / "bin" / "ps").write_text("disk's ps")
    (tmp_path / "etc").mkdir()
    (tmp_path / "etc" / "hostname").write_text("disk-host\n")
    return tmp_path


def test_relative_and_absolute_links_resolve_inside_the_root(disk):
    (disk / "bin").symlink_to("usr/bin")
    (disk / "etc" / "ps-link").symlink_to("/bin/ps")
    fs = RootFS(str(disk))
    assert fs.read_text("/bin/ps") == "disk's ps"
    assert fs.read_text("/etc/ps-link") == "disk's ps"
    assert fs.real_path("/etc/ps-link") == "/usr/bin/ps"
    assert fs.host_path("/etc/ps-link") == str(disk / "usr" / "bin" / "ps")


def test_links_and_dotdot_never_leave_the_root(disk):
    (disk / "etc" / "escape").symlink_to("/../../../../../etc/hostname")
    (disk / "etc" / "up").symlink_to("../../../../etc/hostname")
    fs = RootFS(str(disk))
    assert fs.read_text("/etc/escape") == "disk-host\n"
    assert fs.read_text("/etc/up") == "disk-host\n"
    assert fs.read_text("/../../etc/hostname") == "disk-host\n"
    assert fs.host_path("/etc/escape").startswith(str(disk))


def test_a_link_outside_that_exists_only_on_the_host_is_missing(disk):
    (disk / "etc" / "passwd").symlink_to("/proc/self/status")  # exists on the host only
    with pytest.raises(OSError):
        RootFS(str(disk)).read_text("/etc/passwd")


def test_symlink_loops_raise_eloop(disk):
    (disk / "a").symlink_to("b")
    (disk / "b").symlink_to("a")
    with pytest.raises(OSError) as exc:
        RootFS(str(disk)).read_text("/a")
    assert exc.value.errno == errno.ELOOP
    assert not RootFS(str(disk)).is_file("/a")


def test_only_regular_files_are_opened(disk):
    os.mkfifo(disk / "etc" / "rc.local")
    fs = RootFS(str(disk))
    with pytest.raises(OSError):
        fs.read_text("/etc/rc.local")  # a FIFO: refused at once, never blocks
    with pytest.raises(OSError):
        fs.read_text("/etc")


def test_reads_are_bounded_and_offsets_work(disk):
    (disk / "big").write_bytes(b"x" * 1000 + b"END")
    fs = RootFS(str(disk))
    assert len(fs.read_bytes("/big", limit=10)) == 10
    assert fs.read_bytes("/big", limit=10, offset=1000) == b"END"


def test_listing_and_globs_are_sorted_machine_paths(disk):
    fs = RootFS(str(disk))
    assert fs.glob("/usr/bin", "p*") == ["/usr/bin/ps"]
    assert fs.listdir("/missing") == []
    assert not fs.live and RootFS("/").live


def test_live_root_reads_the_real_files():
    assert RootFS("/").host_path("/proc/self") == "/proc/" + str(os.getpid())
