"""The package installs like a ROS 2 package from a plain ``pip install .``."""

import os
import shutil
import subprocess
import sys
import xml.etree.ElementTree as ET

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@pytest.fixture(scope='module')
def prefix(tmp_path_factory):
    """Install the package (without dependencies) into a fresh prefix."""
    target = tmp_path_factory.mktemp('prefix')
    source = tmp_path_factory.mktemp('src') / 'lam_ros'
    # Build from a copy so the build never writes into the work tree under test.
    shutil.copytree(ROOT, source, ignore=shutil.ignore_patterns(
        '.git', '.venv', 'build', '*.egg-info', '__pycache__', '.pytest_cache'))
    result = subprocess.run(
        [sys.executable, '-m', 'pip', 'install', '--quiet', '--no-deps', '--no-build-isolation',
         '--disable-pip-version-check', '--prefix', str(target), str(source)],
        capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr
    return target


def node_names():
    """Node executables the package ships."""
    nodes = os.path.join(ROOT, 'lam_ros', 'nodes')
    return sorted(f[:-3] for f in os.listdir(nodes) if f.endswith('_node.py'))


def test_package_xml_is_format_3():
    """package.xml declares an ament_python package named lam_ros."""
    root = ET.parse(os.path.join(ROOT, 'package.xml')).getroot()
    assert root.get('format') == '3'
    assert root.findtext('name') == 'lam_ros'
    assert root.find('export/build_type').text == 'ament_python'
    depends = {e.text for e in root.findall('exec_depend')}
    assert {'rclpy', 'std_msgs', 'sensor_msgs', 'std_srvs', 'launch_ros'} <= depends


def test_executables_resolve_for_ros2_run(prefix):
    """Every node has an executable under <prefix>/lib/lam_ros/ as `ros2 run` expects."""
    lib = prefix / 'lib' / 'lam_ros'
    for name in node_names():
        exe = lib / name
        assert exe.is_file(), f'{exe} missing'
        assert os.access(exe, os.X_OK), f'{exe} not executable'


def test_share_files_and_ament_index(prefix):
    """launch/, config/, urdf/ and the ament index marker install under the prefix."""
    share = prefix / 'share'
    assert (share / 'ament_index' / 'resource_index' / 'packages' / 'lam_ros').is_file()
    assert (share / 'lam_ros' / 'package.xml').is_file()
    for folder in ('launch', 'config', 'urdf'):
        for root, _, files in os.walk(os.path.join(ROOT, folder)):
            for f in files:
                rel = os.path.relpath(os.path.join(root, f), ROOT)
                assert (share / 'lam_ros' / rel).is_file(), rel
    ament_index = pytest.importorskip('ament_index_python.packages')
    env_prefix = os.environ.get('AMENT_PREFIX_PATH')
    os.environ['AMENT_PREFIX_PATH'] = str(prefix)
    try:
        assert ament_index.get_package_share_directory('lam_ros') == str(share / 'lam_ros')
    finally:
        if env_prefix is None:
            del os.environ['AMENT_PREFIX_PATH']
        else:
            os.environ['AMENT_PREFIX_PATH'] = env_prefix


def test_cli_entry_point_runs(prefix):
    """The installed `lam-ros` script starts and lists its sub-commands."""
    exe = prefix / 'bin' / 'lam-ros'
    assert exe.is_file()
    result = subprocess.run([sys.executable, '-m', 'lam_ros.cli', '--help'], cwd=ROOT,
                            capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert 'usage: lam-ros' in result.stdout


def test_installed_package_finds_its_urdfs_without_ament_prefix_path(prefix, tmp_path):
    """A pip-installed lam_ros finds share/lam_ros/urdf and its robot description there."""
    site = next(prefix.glob('lib/python*/site-packages'))
    env = {k: v for k, v in os.environ.items() if k != 'AMENT_PREFIX_PATH'}
    env['PYTHONPATH'] = str(site)
    code = ('import lam_ros.description.files as a; print(a.__file__); '
            'print(a.urdf_path("table.urdf")); '
            'from lam_ros.description import load_robot; print(load_robot().source)')
    result = subprocess.run([sys.executable, '-c', code], cwd=tmp_path, env=env,
                            capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    module_file, urdf, robot = result.stdout.split()
    assert module_file.startswith(str(site))
    assert urdf == str(prefix / 'share' / 'lam_ros' / 'urdf' / 'table.urdf')
    assert robot == str(prefix / 'share' / 'lam_ros' / 'config' / 'robots' / 'panda.yaml')
