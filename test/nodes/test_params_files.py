"""
Every params file in config/ loads into the node it is written for.

Each value in a file must reach a parameter the node declares, with the file's value: rclpy
ignores a value for an undeclared name, so a typo or a renamed parameter in a file would
otherwise go unnoticed.
"""

from pathlib import Path

import pytest

pytest.importorskip('rclpy')

from rcl_interfaces.srv import GetParameters, ListParameters  # noqa: E402
from rclpy.parameter import parameter_value_to_python  # noqa: E402
import yaml  # noqa: E402

from .ros_harness import isolate_dds, NodeProcess, Probe  # noqa: E402

CONFIG = Path(__file__).resolve().parents[2] / 'config'
NODES = ('sim_node', 'teleop_node', 'recorder_node', 'demo_runner_node')
# Files for nodes of other packages (the joy driver) and the dataset tool, not lam_ros nodes.
FOREIGN = {'joy_node'}
NOT_PARAMS = {'dataset_mapping.example.yaml'}


def _flatten(params: dict, prefix: str = '') -> dict:
    flat = {}
    for key, value in params.items():
        if isinstance(value, dict):
            flat.update(_flatten(value, f'{prefix}{key}.'))
        else:
            flat[f'{prefix}{key}'] = value
    return flat


def _load(node_name: str, files: list, tmp_path: Path, overrides: dict) -> dict:
    """
    Run ``node_name`` with the params files as ``ros2 run`` would; return its parameters.

    The values are read over DDS through the node's own parameter services, as ``ros2
    param dump`` reads them. The node runs in its own session, without a terminal.
    """
    args = []
    for f in files:
        args += ['--params-file', str(f)]
    for key, value in overrides.items():
        args += ['-p', f'{key}:={value}']
    proc = NodeProcess(node_name, extra_args=args, start_new_session=True)
    probe = Probe('params_probe')
    try:
        names = probe.call(ListParameters, f'/{node_name}/list_parameters',
                           timeout_s=60.0).result.names
        values = {}
        for name in names:  # one by one: a declared parameter without a value answers none
            answer = probe.call(GetParameters, f'/{node_name}/get_parameters',
                                request=GetParameters.Request(names=[name])).values
            values[name] = parameter_value_to_python(answer[0]) if answer else None
        return values
    finally:
        probe.close()
        code = proc.stop()
        assert code == 0, proc.output()


def _same(actual, expected) -> bool:
    if isinstance(expected, list):
        return actual is not None and list(actual) == expected
    return actual == expected


def test_every_params_file_is_covered():
    """Each YAML file in config/ is checked below (a new file needs a case here)."""
    files = {str(p.relative_to(CONFIG)) for p in CONFIG.rglob('*.yaml')}
    checked = {case[0][-1] for case in CASES} | {'robots/panda.yaml'} | NOT_PARAMS
    assert files == checked


CASES = [
    (['sim_node.yaml'], 'sim_node', {}),
    (['teleop_node.yaml'], 'teleop_node', {}),
    (['teleop_node.yaml', 'joy_teleop.yaml'], 'teleop_node', {'source': 'joy'}),
    (['recorder.yaml'], 'recorder_node', {'output_dir': 'OUT'}),
    (['recorder.yaml', 'recorder_camera.yaml'], 'recorder_node', {'output_dir': 'OUT'}),
]


@pytest.mark.parametrize('files, node_name, overrides', CASES, ids=[c[0][-1] for c in CASES])
def test_params_file_reaches_declared_parameters(files, node_name, overrides, tmp_path):
    """Every value the files give the node is a declared parameter with that value."""
    isolate_dds()
    overrides = {k: str(tmp_path / 'dataset') if v == 'OUT' else v
                 for k, v in overrides.items()}
    values = _load(node_name, [CONFIG / f for f in files], tmp_path, overrides)
    overridden = set(overrides)
    # The case's file is the last; earlier ones are what it is layered on.
    document = yaml.safe_load((CONFIG / files[-1]).read_text())
    assert set(document) - FOREIGN <= set(NODES), f'{files[-1]}: sections {sorted(document)}'
    expected = _flatten(document[node_name]['ros__parameters'])
    assert expected
    for name, value in expected.items():
        assert name in values, f'{files[-1]} sets {name!r}, which {node_name} does not declare'
        if name not in overridden:
            assert _same(values[name], value), (name, values[name], value)


def test_robot_description_reaches_every_node(tmp_path):
    """robots/panda.yaml (``/**``): every value is declared by some node, with that value."""
    isolate_dds()
    path = CONFIG / 'robots' / 'panda.yaml'
    expected = _flatten(yaml.safe_load(path.read_text())['/**']['ros__parameters'])
    declared_by = {name: [] for name in expected}
    for node_name in NODES:
        overrides = {'output_dir': str(tmp_path / 'dataset')} if node_name == 'recorder_node' \
            else {}
        values = _load(node_name, [path], tmp_path, overrides)
        for name, value in expected.items():
            if name in values:
                assert _same(values[name], value), (node_name, name, values[name], value)
                declared_by[name].append(node_name)
    unused = [name for name, nodes in declared_by.items() if not nodes]
    assert not unused, f'robots/panda.yaml sets {unused}, which no lam_ros node declares'
