"""Install lam_ros as an ament_python package (colcon) or a plain Python package (pip)."""

import os

from setuptools import find_packages, setup

PACKAGE = 'lam_ros'
HERE = os.path.dirname(os.path.abspath(__file__))
# Every lam_ros/nodes/<name>_node.py is a ROS executable: ``ros2 run lam_ros <name>_node``.
EXECUTABLES = sorted(
    f[:-3] for f in os.listdir(os.path.join(HERE, PACKAGE, 'nodes')) if f.endswith('_node.py'))

# `ros2 run` and launch look for executables in <prefix>/lib/<package>/. colcon honours
# setup.cfg's install_scripts, pip does not, so small wrappers are installed there as data
# files too; they prefer the interpreter of the prefix they were installed into (a venv).
WRAPPER = """#!/bin/sh
prefix="$(cd "$(dirname "$0")/../.." && pwd)"
if [ -x "$prefix/bin/python3" ]; then
    exec "$prefix/bin/python3" -m lam_ros.nodes.{name} "$@"
fi
exec python3 -m lam_ros.nodes.{name} "$@"
"""


def node_wrappers() -> list:
    """Write the ros2-run wrappers into the build tree and return their paths."""
    out_dir = os.path.join('build', 'lam_ros_wrappers')
    os.makedirs(os.path.join(HERE, out_dir), exist_ok=True)
    paths = []
    for name in EXECUTABLES:
        path = os.path.join(out_dir, name)
        with open(os.path.join(HERE, path), 'w') as f:
            f.write(WRAPPER.format(name=name))
        os.chmod(os.path.join(HERE, path), 0o755)
        paths.append(path)
    return paths


# rclpy and the messages the nodes use, as PyPI names without the distribution prefix.
ROS_PACKAGES = ['rclpy', 'rmw-fastrtps-cpp', 'ament-index-python', 'std-msgs', 'std-srvs',
                'sensor-msgs', 'geometry-msgs', 'trajectory-msgs', 'rosgraph-msgs',
                'diagnostic-msgs']
ROS_LINTERS = ['ament-flake8', 'ament-pep257']


def tree(directory: str) -> list:
    """List data_files entries that install `directory` under share/<package>/."""
    entries = []
    for root, _, files in os.walk(directory):
        if files:
            entries.append((os.path.join('share', PACKAGE, root),
                            [os.path.join(root, f) for f in files]))
    return entries


setup(
    name=PACKAGE,
    version='0.1.0',
    packages=find_packages(exclude=['test', 'test.*']),
    data_files=[
        ('share/ament_index/resource_index/packages', ['resource/' + PACKAGE]),
        ('share/' + PACKAGE, ['package.xml']),
        ('lib/' + PACKAGE, node_wrappers()),
    ] + tree('launch') + tree('config') + tree('urdf'),
    python_requires='>=3.10',
    install_requires=[
        'numpy>=1.24',
        'pyyaml',
        'transforms3d>=0.4',
        'pybullet>=3.2.5',
        'gymnasium>=1.0',
        'torch>=2.2',
        'safetensors>=0.4',
        'rosbags>=0.10',
        'mcap>=1.1',
        'tqdm',
        'matplotlib',
        'onnx',  # lam-ros export and the inference node's onnx backend
        'onnxruntime',
        'tensorboard',  # RL and BC curves as TensorBoard events beside metrics.csv
    ],
    extras_require={
        # rclpy and messages from PyPI, for machines without a ROS 2 distro. Never install
        # these on top of a sourced distro: colcon builds against the distro's own.
        'ros': ['ros-' + name for name in ROS_PACKAGES],
        # The same from Jazzy, the LTS (ROS_DISTRO=jazzy bash scripts/setup.sh), with its own
        # linters so that the dev extra resolves to Jazzy's versions too.
        'ros-jazzy': ['ros-jazzy-' + name for name in ROS_PACKAGES + ROS_LINTERS],
        'dev': [
            'pytest', 'hypothesis', 'flake8', 'pydocstyle', 'ros-ament-flake8', 'ros-ament-pep257',
            'flake8-builtins', 'flake8-comprehensions', 'flake8-docstrings', 'flake8-import-order',
            'flake8-quotes',
        ],
    },
    zip_safe=False,
    maintainer='lam_ros maintainers',
    maintainer_email='maintainers@lam-ros.dev',
    description='Learning manipulation from demonstrations and RL for ROS 2 arms.',
    license='Apache-2.0',
    tests_require=['pytest'],
    entry_points={
        'console_scripts': [f'{name} = lam_ros.nodes.{name}:main' for name in EXECUTABLES]
        + ['lam-ros = lam_ros.cli:main'],
    },
)
