"""The pytest plugin (`nvme.pytest_plugin`), the package's import behaviour and the `pynvme` CLI.

Inner pytest sessions load the plugin with `-p nvme.pytest_plugin` and entry-point autoloading
off, so they test the source whether or not the package is installed. Tests that open the
simulated SSD need the native module and are skipped while it cannot be imported.
"""

from __future__ import annotations

import importlib.metadata
import importlib.util
import logging
import re
from pathlib import Path

import pytest

import nvme
from nvme import cli, pytest_plugin

needs_native = pytest.mark.skipif(
    not nvme.native_available(),
    reason=f"native module nvme._native cannot be imported: {nvme._native_error}",
)


def _installed() -> bool:
    """Tell whether the pynvme-rs distribution is installed in this Python."""
    try:
        importlib.metadata.distribution("pynvme-rs")
    except importlib.metadata.PackageNotFoundError:
        return False
    return True


needs_installed = pytest.mark.skipif(
    not _installed(), reason="pynvme-rs is not installed in this Python (run `make install`)"
)


@pytest.fixture
def run(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch):
    """Run an inner pytest session in-process with only this plugin loaded."""
    monkeypatch.setenv("PYTEST_DISABLE_PLUGIN_AUTOLOAD", "1")

    def run_inner(*args: str) -> pytest.RunResult:
        return pytester.runpytest("-p", "nvme.pytest_plugin", *args)

    return run_inner


def _logs(pytester: pytest.Pytester) -> list[Path]:
    """The results log files of the inner sessions, one in each run's folder."""
    return sorted((pytester.path / "results").glob("*/run.log"))


# ---------------------------------------------------------------------------------------------
# options


def test_options_default_to_the_simulated_ssd(pytester, run):
    pytester.makepyfile(
        """
        def test_options(pciaddr, nsid):
            assert pciaddr == ""
            assert nsid == 1
        """
    )
    run().assert_outcomes(passed=1)


def test_options_given_on_the_command_line(pytester, run):
    pytester.makepyfile(
        """
        def test_options(pciaddr, nsid):
            assert pciaddr == "sim://?capacity=1T&namespaces=2"
            assert nsid == 2
        """
    )
    run("--pciaddr=sim://?capacity=1T&namespaces=2", "--nsid", "2").assert_outcomes(passed=1)


def test_nsid_must_be_an_integer(pytester, run):
    pytester.makepyfile("def test_x(): x = 1")
    result = run("--nsid=one")
    assert result.ret != 0
    result.stderr.fnmatch_lines(["*--nsid*invalid int value*"])


def test_help_shows_the_options(pytester, run):
    result = run("--help")
    result.stdout.fnmatch_lines(["*--pciaddr=PCIADDR*", "*--nsid=NSID*", "*--results=DIR*"])


def test_a_pynvme_conftest_may_add_pciaddr_itself(pytester, run):
    pytester.makeconftest(
        """
        def pytest_addoption(parser):
            parser.addoption("--pciaddr", action="store", default="01:00.0", help="BDF")
        """
    )
    pytester.makepyfile(
        """
        def test_options(pciaddr, nsid):
            assert pciaddr == "01:00.0"
            assert nsid == 3
        """
    )
    run("--nsid=3").assert_outcomes(passed=1)


def test_loaded_through_pytest_plugins_of_a_conftest(pytester, monkeypatch):
    monkeypatch.setenv("PYTEST_DISABLE_PLUGIN_AUTOLOAD", "1")
    pytester.makeconftest('pytest_plugins = ["nvme.pytest_plugin"]')
    pytester.makepyfile(
        """
        def test_options(pciaddr, nsid):
            assert (pciaddr, nsid) == ("0000:02:00.0", 4)
        """
    )
    pytester.runpytest("--pciaddr=0000:02:00.0", "--nsid=4").assert_outcomes(passed=1)


# ---------------------------------------------------------------------------------------------
# fixtures without a device


def test_a_test_with_only_pass_is_skipped(pytester, run):
    pytester.makepyfile(
        '''
        def test_stub(nvme0):
            pass

        def test_stub_with_docstring():
            """Write it later."""
            pass

        class TestGroup:
            def test_method_stub(self):
                pass

        def test_not_empty():
            x = 1
            pass
        '''
    )
    result = run("-rs")
    result.assert_outcomes(passed=1, skipped=3)
    result.stdout.fnmatch_lines(["*empty test function*"])


def test_duration_is_logged(pytester, run):
    pytester.makepyfile("def test_x(): x = 1")
    result = run("--log-cli-level=INFO")
    result.assert_outcomes(passed=1)
    result.stdout.re_match_lines([r".*test duration: \d+\.\d{3} sec"])


def test_aer_fixture_fails_with_pynvme_text(pytester, run):
    pytester.makepyfile("def test_x(aer): x = 1")
    result = run()
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(["*aer fixture is replaced by admin command nvme0.aer()*"])


def test_conftest_and_module_override_fixtures(pytester, run):
    pytester.makeconftest(
        """
        import pytest

        @pytest.fixture
        def nvme0():
            return "controller of the conftest"
        """
    )
    pytester.makepyfile(
        """
        import pytest

        @pytest.fixture
        def buf():
            return bytearray(512)

        def test_overrides(nvme0, buf):
            assert nvme0 == "controller of the conftest"
            assert len(buf) == 512
        """
    )
    run().assert_outcomes(passed=1)


def test_reports_of_each_phase_are_kept_on_the_item(pytester, run):
    pytester.makeconftest(
        """
        import pytest

        @pytest.fixture
        def outcome(request):
            yield
            node = request.node
            with open("outcome.txt", "w") as f:
                f.write(f"{node.rep_setup.passed} {node.rep_call.failed}")
        """
    )
    pytester.makepyfile("def test_x(outcome): assert 0")
    run().assert_outcomes(failed=1)
    assert (pytester.path / "outcome.txt").read_text() == "True True"


def test_markers_are_registered(pytester, run):
    pytester.makepyfile(
        """
        import pytest

        @pytest.mark.device
        def test_any_device():
            x = 1

        @pytest.mark.sim_only
        def test_simulator():
            x = 1
        """
    )
    run("--strict-markers").assert_outcomes(passed=2)
    result = run("--markers")
    result.stdout.fnmatch_lines(["@pytest.mark.device:*", "@pytest.mark.sim_only:*"])


def test_sim_only_is_skipped_on_a_real_device(pytester, run):
    pytester.makepyfile(
        """
        import pytest

        @pytest.mark.sim_only
        def test_simulator(nvme0):
            x = 1

        @pytest.mark.device
        def test_any_device():
            x = 1
        """
    )
    result = run("--pciaddr=0000:01:00.0", "-rs")
    result.assert_outcomes(passed=1, skipped=1)
    result.stdout.fnmatch_lines(["*sim_only: needs the simulated SSD, not 0000:01:00.0*"])


# ---------------------------------------------------------------------------------------------
# results log


# The inner session's own warning is what this test is about.
@pytest.mark.filterwarnings("default:ERROR status")
def test_results_log_has_records_warnings_and_outcomes(pytester, run):
    pytester.makepyfile(
        test_log="""
        import logging
        import warnings

        def test_pass():
            logging.getLogger("driver").debug("debug record of the driver")
            warnings.warn(UserWarning("ERROR status: 02/81"))

        def test_fail():
            assert 1 == 2, "wrong value"

        def test_error(aer):
            x = 1
        """
    )
    result = run()
    result.assert_outcomes(passed=1, failed=1, errors=1)
    (log,) = _logs(pytester)
    assert re.fullmatch(r"\d{4}-\d\d-\d\d_\d\d-\d\d-\d\d_sim", log.parent.name)
    result.stdout.fnmatch_lines(
        [
            f"results log: results/{log.parent.name}/run.log",
            f"results: results/{log.parent.name}/index.html",
        ]
    )
    text = log.read_text()
    assert re.search(r"^\[[-\d: ]+\.\d{3}\] DEBUG test_pass\(\d+\): debug record", text, re.M)
    assert "UserWarning: ERROR status: 02/81" in text
    assert "PASSED test_log.py::test_pass" in text
    assert "FAILED test_log.py::test_fail" in text
    assert "wrong value" in text
    assert "ERROR at setup test_log.py::test_error" in text
    assert "1 error, 1 failed, 1 passed in " in text


def test_results_log_is_named_after_the_device(pytester, run):
    pytester.makepyfile("def test_x(): x = 1")
    run("--pciaddr=0000:01:00.0").assert_outcomes(passed=1)
    run("--pciaddr=sim://?namespaces=2").assert_outcomes(passed=1)
    names = [log.parent.name for log in _logs(pytester)]
    assert any(name.endswith("_0000-01-00.0") for name in names), names
    assert any(name.endswith("_sim_namespaces=2") for name in names), names


def test_results_log_never_overwrites_another_run(pytester, run):
    pytester.makepyfile("def test_x(): x = 1")
    for _ in range(3):
        run().assert_outcomes(passed=1)
    assert len(_logs(pytester)) == 3


def test_results_log_can_be_disabled_or_moved(pytester, run):
    pytester.makepyfile("def test_x(): x = 1")
    run("--results=").assert_outcomes(passed=1)
    assert not (pytester.path / "results").exists()
    run("--results=out/logs").assert_outcomes(passed=1)
    assert len(list((pytester.path / "out" / "logs").glob("*/run.log"))) == 1


def test_no_results_log_for_collect_only_and_help(pytester, run):
    pytester.makepyfile("def test_x(): x = 1")
    run("--collect-only")
    run("--help")
    assert not (pytester.path / "results").exists()


def test_root_logger_level_is_restored(pytester, run):
    pytester.makepyfile("def test_x(): x = 1")
    before = logging.getLogger().level
    run().assert_outcomes(passed=1)
    assert logging.getLogger().level == before


@pytest.mark.parametrize(
    ("pciaddr", "tag"),
    [
        ("", "sim"),
        ("sim://", "sim"),
        ("sim://?capacity=1T&lba=4096", "sim_capacity=1T_lba=4096"),
        ("0000:01:00.0", "0000-01-00.0"),
        ("01:00.0", "01-00.0"),
    ],
)
def test_device_tag(pciaddr, tag):
    assert pytest_plugin.device_tag(pciaddr) == tag


# ---------------------------------------------------------------------------------------------
# package and entry points


def test_missing_driver_names_explain_themselves(monkeypatch):
    monkeypatch.setattr(nvme, "_native", None)
    monkeypatch.setattr(nvme, "_native_error", ImportError("no module"))
    with pytest.raises(ImportError, match="make install"):
        nvme.__getattr__("Controller")
    with pytest.raises(AttributeError):
        nvme.__getattr__("NoSuchThing")


def test_typed_package():
    spec = importlib.util.find_spec("nvme")
    assert spec is not None and spec.origin is not None
    assert (Path(spec.origin).parent / "py.typed").exists()


@needs_installed
def test_entry_points_are_installed():
    plugins = importlib.metadata.entry_points(group="pytest11")
    assert {ep.name: ep.value for ep in plugins}.get("nvme") == "nvme.pytest_plugin"
    scripts = importlib.metadata.entry_points(group="console_scripts")
    assert {ep.name: ep.value for ep in scripts}.get("pynvme") == "nvme.cli:main"


@needs_installed
def test_plain_pytest_finds_the_fixtures(pytester, monkeypatch):
    monkeypatch.delenv("PYTEST_DISABLE_PLUGIN_AUTOLOAD", raising=False)
    result = pytester.runpytest_subprocess("--fixtures")
    listed = result.stdout.str()
    for name in ("script", "pcie", "nvme0", "nvme0n1", "qpair", "buf", "verify", "id_ns"):
        assert re.search(rf"^{name} -- .*nvme/pytest_plugin\.py:\d+$", listed, re.M), name


# ---------------------------------------------------------------------------------------------
# pynvme CLI


def _fake_function(root: Path, bdf: str, pci_class: str, driver: str | None) -> None:
    function = root / "devices" / bdf
    function.mkdir(parents=True)
    (function / "class").write_text(pci_class + "\n")
    (function / "vendor").write_text("0x144d\n")
    (function / "device").write_text("0xa808\n")
    if driver:
        (root / "drivers" / driver).mkdir(parents=True, exist_ok=True)
        (function / "driver").symlink_to(root / "drivers" / driver)


def test_cli_list(tmp_path, capsys):
    _fake_function(tmp_path, "0000:01:00.0", "0x010802", "nvme")
    _fake_function(tmp_path, "0000:02:00.0", "0x010802", None)
    _fake_function(tmp_path, "0000:03:00.0", "0x020000", "e1000e")
    assert cli.main(["list", "--sysfs", str(tmp_path / "devices")]) == 0
    out = capsys.readouterr().out
    assert re.search(r"^0000:01:00\.0 +144d:a808 +nvme ", out, re.M)
    assert re.search(r"^0000:02:00\.0 +144d:a808 +- ", out, re.M)
    assert "0000:03:00.0" not in out
    assert re.search(r"^sim:// .*simulated SSD", out, re.M)


def test_cli_list_without_nvme_functions(tmp_path, capsys):
    assert cli.main(["list", "--sysfs", str(tmp_path / "none")]) == 0
    out = capsys.readouterr().out
    assert "sim://" in out
    assert "no NVMe PCI function found" in out


@pytest.mark.parametrize("command", ["setup", "reset"])
def test_cli_setup_and_reset_refuse_clearly(command, capsys, tmp_path):
    # No such function in an empty sysfs tree (as root), or not root: a clear error, status 1.
    assert cli.main([command, "--pciaddr=0000:01:00.0", f"--sysfs={tmp_path}"]) == 1
    err = capsys.readouterr().err
    assert f"pynvme {command}:" in err
    assert "must run as root" in err or "not an NVMe function" in err


# ---------------------------------------------------------------------------------------------
# fixtures on the simulated SSD


@needs_native
def test_fixtures_on_the_simulated_ssd(pytester, run):
    pytester.makepyfile(
        """
        from nvme import *

        def test_fixtures(pcie, nvme0, nvme0n1, qpair, buf, subsystem, verify, id_ctrl, id_ns):
            assert isinstance(pcie, Pcie)
            assert isinstance(nvme0, Controller)
            assert isinstance(nvme0n1, Namespace)
            assert isinstance(qpair, Qpair)
            assert isinstance(buf, Buffer)
            assert isinstance(subsystem, Subsystem)
            assert verify is True
            assert id_ns.nsze > 0
            assert id_ctrl.vid == pcie.register(0, 2), "Identify VID is the PCI vendor id"

        def test_again(nvme0n1, qpair):
            x = 1
        """
    )
    run().assert_outcomes(passed=2)


@needs_native
def test_nsid_selects_the_namespace(pytester, run):
    pytester.makepyfile(
        """
        def test_second_namespace(nvme0n1, id_ns, nsid):
            assert nsid == 2
            assert id_ns.nsze > 0
        """
    )
    run("--pciaddr=sim://?namespaces=2", "--nsid=2").assert_outcomes(passed=1)
