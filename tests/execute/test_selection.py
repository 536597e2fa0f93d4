"""Selecting and ordering a phase's tests: pure filters over index entries."""

from __future__ import annotations

from greenloop.config import PhaseConfig
from greenloop.execute.selection import matches_focus, risk_order, select_tests
from greenloop.records import IndexEntry

INDEX = (
    IndexEntry(
        "checkout/test_pay.py",
        priority=1,
        category="payments",
        tags=("money",),
        mrr_at_risk_usd=900,
    ),
    IndexEntry("test_login.py", priority=1, category="auth", tags=("smoke",), mrr_at_risk_usd=100),
    IndexEntry("test_profile.py", priority=3, category="account"),
)


def test_select_filters_by_the_phase_table_and_focus(tree, make_config) -> None:
    tree(
        {e.path: "def test_x(): pass\n" for e in INDEX}
        | {"test_unindexed.py": "def test_y(): pass\n"}
    )
    config = make_config()
    smoke = PhaseConfig(
        name="smoke", select={"priorities": [1], "markers": "not slow", "keyword": "x"}
    )
    selection = select_tests(config, smoke, INDEX)
    assert [e.path for e in selection.entries] == ["checkout/test_pay.py", "test_login.py"]
    assert selection.files[0] == str(config.resolve("tests") / "checkout/test_pay.py")
    assert selection.pytest_args == ("-m", "not slow", "-k", "x")
    assert "priorities [1]" in selection.reason and "2 file(s)" in selection.reason

    everything = select_tests(config, PhaseConfig(name="all"), INDEX)
    assert "test_unindexed.py" in [e.path for e in everything.entries]
    focused = select_tests(config, PhaseConfig(name="all"), INDEX, focus="payments")
    assert [e.path for e in focused.entries] == ["checkout/test_pay.py"]
    by_dir = select_tests(config, PhaseConfig(name="d", select={"files": ["checkout/"]}), INDEX)
    assert [e.path for e in by_dir.entries] == ["checkout/test_pay.py"]
    none = select_tests(config, PhaseConfig(name="n", select={"tags": ["nope"]}), INDEX)
    assert none.files == () and "no test file" in none.reason


def test_focus_matches_tags_categories_priorities_and_names() -> None:
    pay = INDEX[0]
    assert matches_focus(pay, "money") and matches_focus(pay, "PAYMENTS")
    assert matches_focus(pay, "p1") and matches_focus(pay, "priority:1")
    assert not matches_focus(pay, "p3")
    assert matches_focus(pay, "pay.py") and not matches_focus(pay, "login")


def test_risk_order_puts_open_issues_and_failures_first_and_green_last() -> None:
    history = {
        "test_profile.py::test_x": ("failed", "passed"),
        "test_login.py::test_x": ("passed", "passed"),
        "checkout/test_pay.py::test_y": ("passed",),
    }
    order = risk_order(INDEX, history, open_issues={"checkout/test_pay.py::test_x"})
    assert order == (
        "checkout/test_pay.py::test_x",
        "test_profile.py::test_x",
        "checkout/test_pay.py",
        "test_profile.py",
        "test_login.py",
    )


def test_files_an_earlier_phase_ran_are_not_run_again() -> None:
    from greenloop.execute.selection import Selection, without_files

    selection = Selection(
        phase="critical",
        files=("/t/test_a.py", "/t/test_b.py"),
        order=("test_a.py::test_x", "test_b.py"),
        reason="phase 'critical': priorities [1]",
        entries=(IndexEntry("test_a.py"), IndexEntry("test_b.py")),
        tests_dir="/t",
    )
    left = without_files(selection, {"/t/test_a.py"})
    assert left.files == ("/t/test_b.py",)
    assert left.order == ("test_b.py",)
    assert [e.path for e in left.entries] == ["test_b.py"]
    assert left.reason.endswith("1 file(s) already ran in an earlier phase")
    assert without_files(selection, set()) is selection


def test_heavy_plugins_no_selected_test_uses_are_not_loaded_in_workers(tmp_path) -> None:
    from greenloop.execute.runners.pytest import unused_plugin_opts
    from greenloop.execute.selection import Selection

    plain = tmp_path / "test_plain.py"
    plain.write_text("def test_x():\n    pass\n")
    selection = Selection(phase="p", files=(str(plain),), tests_dir=str(tmp_path))
    assert unused_plugin_opts(selection) == ["-p", "no:anyio"]

    (tmp_path / "conftest.py").write_text(
        "import pytest\n\n@pytest.fixture\ndef anyio_backend():\n"
    )
    assert unused_plugin_opts(selection) == []


def test_a_stale_index_row_is_left_out_and_said_not_handed_to_pytest(tree, make_config) -> None:
    # A renamed test file still in the index made pytest fail the whole phase unrun ("file or
    # directory not found": exit 4 with every other file unrun).
    tree({"test_login.py": "def test_x(): pass\n"})
    config = make_config()
    selection = select_tests(config, PhaseConfig(name="all"), INDEX)
    assert [e.path for e in selection.entries] == ["test_login.py"]
    assert selection.reason.endswith(
        "left out 2 index entries naming no file: checkout/test_pay.py, test_profile.py"
    )


def test_an_inline_index_path_written_from_the_tests_folder_is_found(tree, make_config) -> None:
    # Documented as relative to the config's folder; one written relative to tests_dir (as
    # select.files may be) resolved to a file that does not exist and showed as a phantom
    # blocked "test" named by its absolute path.
    from greenloop.index import load_index

    tree({"test_cache.py": "def test_x(): pass\n"})
    config = make_config(index={"files": [{"path": "test_cache.py", "priority": 1}]})
    assert [(e.path, e.priority) for e in load_index(config)] == [("test_cache.py", 1)]
    written_from_config = make_config(index={"files": [{"path": "tests/test_cache.py"}]})
    assert [e.path for e in load_index(written_from_config)] == ["test_cache.py"]
