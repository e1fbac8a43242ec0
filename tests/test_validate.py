"""aigc_lib.validate.parameters: the rules a notebook's check cell gives its parameters."""

import pytest

from aigc_lib import validate


@pytest.mark.parametrize(
    "value, rule",
    [
        (5, "int >= 1"),
        (0, "int >= 0"),
        (3, "float > 0"),  # an int is a float
        (0.5, "float in [0, 1]"),
        (True, "bool"),
        ("paper", "str"),
        ("paper", "one of paper, published"),
        ("cuda:1", "str matching auto|cpu|cuda(:[0-9]+)?"),
        ([1, 2, 2], "list of int >= 1"),
        ([0, 1], "distinct list of int >= 0"),
        (["sd15", "sdxl"], "distinct list of one of sdxl-turbo, sd15, sdxl"),
        (None, "file or None"),
        (None, "list of float > 0 or None"),
    ],
)
def test_values_that_follow_their_rule_pass(value, rule):
    assert validate.check_rule(value, rule, "p") is value


@pytest.mark.parametrize(
    "value, rule, message",
    [
        (0, "int >= 1", "n: expected int >= 1, got 0"),
        ("abc", "int >= 1", "n: expected int >= 1, got 'abc'"),
        (2.0, "int", "n: expected int, got 2.0"),
        (True, "int >= 0", "n: expected int >= 0, got True"),
        (float("nan"), "float", "n: expected float, got nan"),
        (1.5, "float in [0, 1]", "n: expected float in [0, 1], got 1.5"),
        (0, "float > 0", "n: expected float > 0, got 0"),
        ("", "str", "n: expected str, got ''"),
        ("gpu", "one of auto, cpu", "n: expected one of auto, cpu, got 'gpu'"),
        ([], "list of int", "n: expected list of int, got []"),
        ([1, 0], "list of int >= 1", "n: expected list of int >= 1, got [1, 0] (item 1: 0)"),
        ([1, 1], "distinct list of int", "(repeated items)"),
        ("missing.csv", "file", "n: expected file, got 'missing.csv' (no such file)"),
        ("[1, 2]", "list of int", "(a string: papermill's -p and -r pass strings; give lists"),
    ],
)
def test_a_value_breaking_its_rule_is_one_line_naming_the_parameter(value, rule, message):
    with pytest.raises(ValueError) as err:
        validate.check_rule(value, rule, "n")
    assert message in str(err.value) and "\n" not in str(err.value)


def test_files_are_read_from_the_given_folder(tmp_path):
    (tmp_path / "sweep.csv").write_text("x")
    assert validate.check_rule("sweep.csv", "file or None", "sweep_path", cwd=tmp_path)
    with pytest.raises(ValueError, match="no such file"):
        validate.check_rule("sweep.csv", "file", "sweep_path", cwd=tmp_path / "elsewhere")


def test_parameters_checks_each_keyword_and_names_the_first_bad_one():
    validate.parameters(n_slots=(10, "int >= 1"), seed=(0, "int >= 0"))
    with pytest.raises(ValueError, match=r"^seed: expected int >= 0, got -1$"):
        validate.parameters(n_slots=(10, "int >= 1"), seed=(-1, "int >= 0"))
    with pytest.raises(ValueError, match=r"seed: expected \(value, rule\)"):
        validate.parameters(seed=0)


@pytest.mark.parametrize(
    "rule", ["integer", "int >== 1", "float in [0 1]", "list of", "one of ,", ""]
)
def test_an_unreadable_rule_is_refused(rule):
    with pytest.raises(ValueError, match="seed: "):
        validate.check_rule(0, rule, "seed")
