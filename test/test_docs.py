"""
The documentation matches the code: node reference, documented commands, launch arguments.

docs/nodes.md is what docs/node_reference.py writes from the nodes' --help; every
``lam-ros`` command in a README or docs code block parses with the real CLI parser; every
``ros2 launch lam_ros`` / ``ros2 run lam_ros`` command names a real file or node and only
arguments or parameters it declares.
"""

import argparse
import ast
import contextlib
import importlib.util
import io
from pathlib import Path
import re
import shlex

import pytest

ROOT = Path(__file__).resolve().parents[1]
DOCS = [ROOT / 'README.md'] + sorted((ROOT / 'docs').glob('*.md'))


def _reference():
    spec = importlib.util.spec_from_file_location('node_reference',
                                                  ROOT / 'docs' / 'node_reference.py')
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


REFERENCE = _reference()


@pytest.fixture(scope='module')
def helps():
    return {name: REFERENCE.parse_help(REFERENCE.node_help(name)) for name in REFERENCE.NODES}


def test_nodes_md_is_generated_from_the_nodes():
    current = (ROOT / 'docs' / 'nodes.md').read_text()
    assert current == REFERENCE.render(), \
        'docs/nodes.md is out of date: run python docs/node_reference.py'


def test_every_node_executable_is_documented():
    executables = sorted(p.stem for p in (ROOT / 'lam_ros' / 'nodes').glob('*_node.py'))
    assert sorted(REFERENCE.NODES) == executables


@pytest.mark.parametrize('name', REFERENCE.NODES)
def test_interface_tables_match_the_node_source(name, helps):
    params = {p[0] for p in helps[name][1]}
    rows = REFERENCE.INTERFACES[name]
    for _, topic, _, _ in rows:
        for param in re.findall(r'\{(\w+)\}', topic):
            assert param in params, f'{name}: {{{param}}} is not a parameter of the node'
    documented = {t for _, topic, _, _ in rows for t in re.split(r',\s*', topic)}
    source = (ROOT / 'lam_ros' / 'nodes' / f'{name}.py').read_text()
    private = set(re.findall(r"""['"](~/\w+)['"]""", source))
    assert private <= documented, f'{name} creates {private - documented}, not in its table'


# ---- commands in code blocks ----

def _code_lines():
    """Yield (file, command line) of every shell line in a fenced code block."""
    for path in DOCS:
        block = None
        pending = ''
        for line in path.read_text().splitlines():
            if line.startswith('```'):
                block = None if block is not None else line[3:].strip()
                continue
            if block not in ('bash', 'sh', 'shell', ''):
                continue
            text = pending + line.strip()
            if text.endswith('\\'):
                pending = text[:-1] + ' '
                continue
            pending = ''
            text = re.sub(r'\s+#.*$', '', text).strip()
            if text and not text.startswith('#'):
                yield path.name, text


def _words(line: str) -> list:
    try:
        return shlex.split(line)
    except ValueError:
        return line.split()


def _commands(pattern: str):
    found = []
    for doc, line in _code_lines():
        for part in re.split(r'\s*(?:&&|;|\|\||(?<!\|)\|(?!\|))\s*', line):
            words = _words(part)
            for i in range(len(words)):
                if re.fullmatch(pattern, ' '.join(words[i:i + pattern.count(' ') + 1])):
                    found.append((doc, words[i:]))
                    break
    return found


def _lam_ros_commands():
    out = []
    for doc, line in _code_lines():
        for part in re.split(r'\s*(?:&&|;)\s*', line):
            words = _words(part)
            for i, word in enumerate(words):
                if word.endswith('lam-ros') or (word == 'lam_ros.cli' and words[i - 1] == '-m'):
                    if not any(a.startswith('<') for a in words[i + 1:]):  # placeholders
                        out.append((doc, words[i + 1:]))
                    break
    return out


LAM_ROS = _lam_ros_commands()


def test_docs_show_lam_ros_commands():
    assert len(LAM_ROS) >= 10, LAM_ROS


@pytest.mark.parametrize('doc,argv', LAM_ROS, ids=[f'{d}:{" ".join(a)[:60]}' for d, a in LAM_ROS])
def test_documented_lam_ros_command_parses(doc, argv):
    from lam_ros.cli import build_parser
    command = next((a for a in argv[:1] if not a.startswith('-')), None)
    parser = build_parser(command)
    err = io.StringIO()
    try:
        with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
            args = parser.parse_args(argv)
    except SystemExit as exc:
        assert exc.code == 0, f'{doc}: lam-ros {" ".join(argv)}: {err.getvalue()}'
        return
    assert isinstance(args, argparse.Namespace)
    assert getattr(args, 'func', None) is not None, f'{doc}: lam-ros {argv} runs nothing'


def _launch_arguments(path: Path) -> set:
    tree = ast.parse(path.read_text())
    return {c.args[0].value for c in ast.walk(tree)
            if isinstance(c, ast.Call) and getattr(c.func, 'id', '') == 'DeclareLaunchArgument'}


LAUNCHES = _commands(r'ros2 launch lam_ros')


def test_docs_show_launch_commands():
    files = {argv[3] for _, argv in LAUNCHES}
    assert files == {p.name for p in (ROOT / 'launch').glob('*.launch.py')}, files


@pytest.mark.parametrize('doc,argv', LAUNCHES,
                         ids=[f'{d}:{" ".join(a[3:])[:60]}' for d, a in LAUNCHES])
def test_documented_launch_command_names_real_arguments(doc, argv):
    path = ROOT / 'launch' / argv[3]
    assert path.is_file(), f'{doc}: no launch file {argv[3]}'
    declared = _launch_arguments(path)
    for word in argv[4:]:
        if ':=' in word:
            name = word.split(':=')[0]
            assert name in declared, f'{doc}: {argv[3]} declares no argument {name!r}'


def _node_runs():
    """Return (doc, [node, args...]) of ``ros2 run lam_ros NODE`` and ``.venv/bin/NODE``."""
    runs = [(doc, argv[3:]) for doc, argv in _commands(r'ros2 run lam_ros')]
    for doc, line in _code_lines():
        words = _words(line)
        for i, word in enumerate(words):
            if re.fullmatch(r'\S*/bin/\w+_node', word):
                runs.append((doc, [word.rsplit('/', 1)[1]] + words[i + 1:]))
    return runs


RUNS = _node_runs()


def test_docs_show_node_commands():
    assert len(RUNS) >= 2, RUNS


@pytest.mark.parametrize('doc,argv', RUNS, ids=[f'{d}:{" ".join(a)[:60]}' for d, a in RUNS])
def test_documented_node_command_names_real_parameters(doc, argv, helps):
    node = argv[0]
    assert node in helps, f'{doc}: no node {node}'
    params = {p[0] for p in helps[node][1]} | {'use_sim_time'}
    for i, word in enumerate(argv):
        if word == '-p' and i + 1 < len(argv):
            name = argv[i + 1].split(':=')[0]
            assert name in params, f'{doc}: {node} has no parameter {name!r}'
