"""
Every params file in config/ loads into the node it is written for.

Each value in a file must reach a parameter the node declares, with the file's value: rclpy
ignores a value for an undeclared name, so a typo or a renamed parameter in a file would
otherwise go unnoticed.
"""

import dataclasses
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
# Robot descriptions are read by lam_ros.description (test/description), not by rclpy.
NOT_PARAMS = {'dataset_mapping.example.yaml'} | {
    str(p.relative_to(CONFIG)) for p in (CONFIG / 'robots').glob('*.yaml')}


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
                           timeout_s=60.0, resend_s=5.0).result.names
        values = {}
        for name in names:  # one by one: a declared parameter without a value answers none
            answer = probe.call(GetParameters, f'/{node_name}/get_parameters', resend_s=5.0,
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
    checked = {case[0][-1] for case in CASES} | set(IDLE_LESS) | NOT_PARAMS
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


def _declared_by(node_name: str) -> dict:
    """Return the parameters (name -> default) a node declares from its config dataclasses."""
    if node_name == 'trainer_node':
        from lam_ros.learn.pipeline_config import PipelineConfig, TrainerNodeOptions
        configs, extra = [PipelineConfig(), TrainerNodeOptions()], {}
    else:
        from lam_ros.control.inference import InferenceConfig
        configs, extra = [InferenceConfig()], {'robot_description': ''}
    declared = dict(extra)
    for config in configs:
        declared.update({f.name: getattr(config, f.name) for f in dataclasses.fields(config)})
    return declared


# Nodes that cannot start without data this test does not have (a checkpoint; a dataset to
# train on, which starts training): their files are checked against the declared fields.
IDLE_LESS = {'inference_panda.yaml': 'inference_node',
             'inference_template.yaml': 'inference_node',
             'train.yaml': 'trainer_node'}


@pytest.mark.parametrize('name', sorted(IDLE_LESS))
def test_params_file_of_a_node_that_needs_data_names_declared_parameters(name):
    """Each value names a parameter the node declares, of the type of its default."""
    node_name = IDLE_LESS[name]
    document = yaml.safe_load((CONFIG / name).read_text())
    assert set(document) == {node_name}, f'{name}: sections {sorted(document)}'
    expected = _flatten(document[node_name]['ros__parameters'])
    assert expected
    declared = _declared_by(node_name)
    for key, value in expected.items():
        assert key in declared, f'{name} sets {key!r}, which {node_name} does not declare'
        default = declared[key]
        if isinstance(default, bool) or isinstance(value, bool):
            assert isinstance(value, bool) == isinstance(default, bool), (key, value, default)
        elif isinstance(default, float):
            assert isinstance(value, (int, float)), (key, value, default)
        elif default is not None and not isinstance(default, (list, tuple)):
            assert isinstance(value, type(default)), (key, value, default)
