"""``lam-ros train`` on camera demos: the image-encoder flags reach the checkpoint."""

from lam_ros.cli import main as lam_ros
from lam_ros.data.recording.demos import DemoConfig, record_demos
from lam_ros.policy import load_checkpoint
import pytest


@pytest.fixture(scope='module')
def camera_demos(tmp_path_factory):
    """Record two scripted lift episodes with a 16x16 scene camera."""
    out = tmp_path_factory.mktemp('camera_demos')
    record_demos(DemoConfig(task='lift', episodes=2, seed=0, cameras='scene', camera_width=16,
                            camera_height=16), out)
    return out


def test_image_flags_build_the_encoder_they_name(camera_demos, tmp_path, capsys):
    run = tmp_path / 'run'
    code = lam_ros(['train', '--dataset', str(camera_demos), '--out', str(run),
                    '--obs', 'joint_pos,scene_rgb', '--history', '1', '--chunk', '4',
                    '--d-model', '16', '--heads', '2', '--layers', '1', '--steps', '3',
                    '--batch-size', '4', '--threads', '1', '--no-progress',
                    '--image-encoder', 'resnet', '--image-channels', '4,8',
                    '--image-keypoints', '6', '--image-grid', '1', '--image-shift', '2'])
    assert code == 0, capsys.readouterr().err
    model, meta = load_checkpoint(str(run / 'last'))
    cfg = model.config
    assert (cfg.image_encoder, cfg.image_channels, cfg.image_keypoints, cfg.image_grid) == \
        ('resnet', (4, 8), 6, 1)
    assert meta['bc_config']['image_shift'] == 2
    assert model.tokens_per_step == 1 + 1  # joint_pos + one token for the camera


@pytest.mark.parametrize('flag, value, message', [
    ('--image-channels', '4,x', 'comma-separated positive channel counts'),
    ('--image-encoder', 'vit', "invalid choice: 'vit'"),
])
def test_bad_image_flags_are_one_clear_error(camera_demos, tmp_path, capsys, flag, value,
                                             message):
    with pytest.raises(SystemExit) as exit_info:
        lam_ros(['train', '--dataset', str(camera_demos), '--out', str(tmp_path / 'run'),
                 flag, value])
    assert exit_info.value.code == 2
    assert message in capsys.readouterr().err
    assert not (tmp_path / 'run').exists()
