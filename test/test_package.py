"""
The package installs like a ROS 2 package, and what is installed runs.

The install goes into a throwaway venv, never into the environment running the tests:
``pip install --prefix`` with this venv's own Python would first uninstall lam_ros from it.
The throwaway venv sees this environment's dependencies (torch, rclpy...) through a ``.pth``
file, but lam_ros itself, its ``bin/lam-ros`` and its ``lib/lam_ros/*`` come from the
install under test; every check runs them from outside the source tree.
"""

import os
import subprocess
import sys
import sysconfig
import xml.etree.ElementTree as ET

from nodes.ros_harness import check_node_executables
import pytest
from source_tree import copy_source

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _clean_env(**extra) -> dict:
    """Return this environment without the source tree or an ament prefix on the paths."""
    env = {k: v for k, v in os.environ.items()
           if k not in ('PYTHONPATH', 'AMENT_PREFIX_PATH', 'VIRTUAL_ENV')}
    env.update(extra)
    return env


@pytest.fixture(scope='module')
def venv(tmp_path_factory):
    """Install the package (without dependencies) into a fresh throwaway venv."""
    target = tmp_path_factory.mktemp('venv')
    source = tmp_path_factory.mktemp('src') / 'lam_ros'
    # Build from a copy so the build never writes into the work tree under test.
    copy_source(source)
    subprocess.run([sys.executable, '-m', 'venv', '--without-pip', str(target)], check=True)
    site = subprocess.run(
        [str(target / 'bin' / 'python'), '-c',
         'import sysconfig; print(sysconfig.get_path("purelib"))'],
        capture_output=True, text=True, check=True).stdout.strip()
    # Dependencies come from the environment running the tests; lam_ros from the install.
    deps = {sysconfig.get_path('purelib'), sysconfig.get_path('platlib')}
    with open(os.path.join(site, 'test_dependencies.pth'), 'w') as f:
        f.write('\n'.join(sorted(deps)) + '\n')
    result = subprocess.run(
        [sys.executable, '-m', 'pip', '--python', str(target / 'bin' / 'python'), 'install',
         '--quiet', '--no-deps', '--ignore-installed', '--no-build-isolation',
         '--disable-pip-version-check', str(source)],
        capture_output=True, text=True, cwd=tmp_path_factory.getbasetemp(), env=_clean_env())
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


def test_package_xml_lists_every_python_dependency():
    """Each of setup.py's install_requires has an exec_depend, so rosdep users get it too."""
    import re
    root = ET.parse(os.path.join(ROOT, 'package.xml')).getroot()
    depends = {e.text for e in root.findall('exec_depend')}
    with open(os.path.join(ROOT, 'setup.py')) as f:
        block = f.read().split('install_requires=[', 1)[1].split(']', 1)[0]
    block = re.sub(r'#.*', '', block)
    names = [re.split(r'[<>=!~ ]', n)[0].lower() for n in re.findall(r"'([^']+)'", block)]
    keys = {'pyyaml': 'yaml'}
    missing = [n for n in names
               if not {f'python3-{keys.get(n, n)}', f'python3-{keys.get(n, n)}-pip'} & depends]
    assert len(names) >= 10 and not missing, f'package.xml lacks exec_depends for {missing}'


def test_installed_lam_ros_is_the_venvs_own(venv, tmp_path):
    """Python in the venv imports lam_ros from the install, not from this environment."""
    code = 'import lam_ros, sys; print(lam_ros.__file__); print(sys.prefix)'
    result = subprocess.run([str(venv / 'bin' / 'python'), '-c', code], cwd=tmp_path,
                            env=_clean_env(), capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    module_file, prefix = result.stdout.split()
    assert module_file.startswith(str(venv)), module_file
    assert prefix == str(venv)


def test_share_files_and_ament_index(venv):
    """launch/, config/, urdf/ and the ament index marker install under the prefix."""
    share = venv / 'share'
    assert (share / 'ament_index' / 'resource_index' / 'packages' / 'lam_ros').is_file()
    assert (share / 'lam_ros' / 'package.xml').is_file()
    for folder in ('launch', 'config', 'urdf'):
        for root, _, files in os.walk(os.path.join(ROOT, folder)):
            for f in files:
                rel = os.path.relpath(os.path.join(root, f), ROOT)
                assert (share / 'lam_ros' / rel).is_file(), rel
    code = ('from ament_index_python.packages import get_package_share_directory as g; '
            'print(g("lam_ros"))')
    result = subprocess.run([str(venv / 'bin' / 'python'), '-c', code], cwd=venv,
                            env=_clean_env(AMENT_PREFIX_PATH=str(venv)),
                            capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == str(share / 'lam_ros')


def test_installed_cli_entry_point_runs(venv, tmp_path):
    """The installed ``bin/lam-ros`` script starts and lists its sub-commands."""
    exe = venv / 'bin' / 'lam-ros'
    result = subprocess.run([str(exe), '--help'], cwd=tmp_path, env=_clean_env(),
                            capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert 'usage: lam-ros' in result.stdout
    for command in ('demos', 'dataset', 'train', 'eval'):
        assert command in result.stdout


def test_ros2_run_executables_start_their_nodes(venv, tmp_path):
    """Every ``lib/lam_ros/<node>`` wrapper runs the installed node as ``ros2 run`` would."""
    pytest.importorskip('rclpy')
    lib = venv / 'lib' / 'lam_ros'
    assert sorted(os.listdir(lib)) == node_names()
    for name in node_names():
        assert os.access(lib / name, os.X_OK), f'{lib / name} not executable'
    check_node_executables([str(lib / name) for name in node_names()], str(tmp_path),
                           env=_clean_env())


def test_installed_package_finds_its_urdfs_without_ament_prefix_path(venv, tmp_path):
    """A pip-installed lam_ros finds share/lam_ros/urdf and its robot description there."""
    code = ('import lam_ros.description.files as a; print(a.__file__); '
            'print(a.urdf_path("table.urdf")); '
            'from lam_ros.description import load_robot; print(load_robot().source)')
    result = subprocess.run([str(venv / 'bin' / 'python'), '-c', code], cwd=tmp_path,
                            env=_clean_env(), capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    module_file, urdf, robot = result.stdout.split()
    assert module_file.startswith(str(venv))
    share = venv / 'share' / 'lam_ros'
    assert urdf == str(share / 'urdf' / 'table.urdf')
    assert robot == str(share / 'config' / 'robots' / 'panda.yaml')


def test_source_copy_leaves_out_venvs_and_outputs(tmp_path):
    """The copy that test installs build from holds the package, not GBs of venvs or caches."""
    copy = copy_source(tmp_path / 'src')
    top = set(os.listdir(copy))
    assert {'setup.py', 'package.xml', 'lam_ros', 'launch', 'config', 'urdf'} <= top
    assert not [n for n in top if n.startswith('.venv') or n == '.git' or n.endswith('.egg-info')]
    assert os.path.isdir(os.path.join(copy, 'lam_ros', 'data'))  # only the top-level data/ goes
