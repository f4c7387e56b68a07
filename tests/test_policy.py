import pytest

from jaqmoo.errors import JaqmooError
from jaqmoo.quant.policy import FLOAT_BITS, QuantPolicy, check_bits, parse_bits_spec

NAMES = ("conv1", "conv2", "fc")


def test_uniform_and_tensor_bits():
    p = QuantPolicy.uniform(NAMES, 4, 8)
    assert p.weight_bits == (4, 4, 4) and p.act_bits == (8, 8, 8)
    assert p.tensor_bits(0) == (4, 8, 8)
    mixed = QuantPolicy(NAMES, (8, 4, 2), (8, 6, 3), last_output_bits=5)
    assert mixed.tensor_bits(0) == (8, 8, 6)  # output stored at the next layer's input bits
    assert mixed.tensor_bits(2) == (2, 3, 5)


@pytest.mark.parametrize("bad", [1, 9, 16, -2, "seven", 4.5, True])
def test_bits_out_of_range_is_a_clear_error(bad):
    with pytest.raises(JaqmooError, match="bits"):
        check_bits(bad, "layer x weight bits")


def test_float_spelling():
    assert check_bits("float", "w") == FLOAT_BITS
    assert parse_bits_spec("4/8") == (4, 8)
    assert parse_bits_spec("6") == (6, 6)
    with pytest.raises(JaqmooError, match="--bits"):
        parse_bits_spec("4/8/2")


def test_wrong_number_of_layers():
    with pytest.raises(JaqmooError, match="one of each per layer"):
        QuantPolicy(NAMES, (8, 8), (8, 8, 8))
    p = QuantPolicy.uniform(NAMES, 8)
    with pytest.raises(JaqmooError, match="does not match the model"):
        p.with_layers(("conv1", "conv2"))


def test_file_round_trip(tmp_path):
    p = QuantPolicy(NAMES, (8, 4, 2), (8, 6, 3), last_output_bits=4)
    path = tmp_path / "policy.yaml"
    p.save(path)
    assert QuantPolicy.load(path, NAMES) == p


def test_file_default_and_errors(tmp_path):
    path = tmp_path / "p.yaml"
    path.write_text("default: 4/8\nlayers:\n  conv2: {w: 2}\n")
    p = QuantPolicy.load(path, NAMES)
    assert p.weight_bits == (4, 2, 4) and p.act_bits == (8, 8, 8)
    path.write_text("layers:\n  convX: 4/4\n")
    with pytest.raises(JaqmooError, match="not in the model"):
        QuantPolicy.load(path, NAMES)
    path.write_text("defualt: 4\n")
    with pytest.raises(JaqmooError, match="unknown keys"):
        QuantPolicy.load(path, NAMES)
    path.write_text("layers: [unclosed\n")
    with pytest.raises(JaqmooError, match="not valid YAML"):
        QuantPolicy.load(path, NAMES)
    with pytest.raises(JaqmooError, match="does not exist"):
        QuantPolicy.load(tmp_path / "missing.yaml", NAMES)
