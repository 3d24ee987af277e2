#!/bin/bash
# Multi-node training with torchrun under SLURM: one torchrun per node, one rank per GPU.
#
#   sbatch --nodes 2 --gpus-per-node 4 scripts/slurm_train.sh \
#       --config config/train.yaml --dataset /shared/demos/lift --output /shared/runs/lift
#
# Arguments go to `lam-ros pipeline` (LAM_ROS_COMMAND=train: `lam-ros train`). The output
# directory must be on a filesystem every node sees. See docs/training.md.
#SBATCH --job-name=lam_ros_train
#SBATCH --ntasks-per-node=1
#SBATCH --cpus-per-task=16
#SBATCH --time=04:00:00
#SBATCH --signal=TERM@120
#SBATCH --output=lam_ros_train_%j.log
set -euo pipefail

PYTHON="${LAM_ROS_PYTHON:-python3}"                   # e.g. /path/to/venv/bin/python
COMMAND="${LAM_ROS_COMMAND:-pipeline}"
GPUS_PER_NODE="${SLURM_GPUS_ON_NODE:-${SLURM_GPUS_PER_NODE:-1}}"
GPUS_PER_NODE="${GPUS_PER_NODE##*:}"                  # "a100:4" -> "4"
HEAD_NODE="$(scontrol show hostnames "$SLURM_JOB_NODELIST" | head -n 1)"
PORT="${LAM_ROS_PORT:-29500}"

echo "lam_ros: ${SLURM_JOB_NUM_NODES} nodes x ${GPUS_PER_NODE} ranks, rendezvous ${HEAD_NODE}:${PORT}"
# One task per node; each torchrun starts GPUS_PER_NODE ranks and joins the others at the
# head node. `exec` lets SIGTERM reach torchrun, which passes it to the ranks (they save
# last/ and stop).
exec srun --kill-on-bad-exit=1 "$PYTHON" -m torch.distributed.run \
    --nnodes "$SLURM_JOB_NUM_NODES" \
    --nproc_per_node "$GPUS_PER_NODE" \
    --rdzv_id "$SLURM_JOB_ID" \
    --rdzv_backend c10d \
    --rdzv_endpoint "${HEAD_NODE}:${PORT}" \
    -m lam_ros.cli "$COMMAND" "$@"
