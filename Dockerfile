# syntax=docker/dockerfile:1
# swarm-ray on Ray's own image: the same Ray and Python (3.11), the non-root `ray` user
# (uid 1000, group users) and the /home/ray layout KubeRay expects. The project is installed with
# the tested stack pinned by constraints.txt, torch as its CPU build.
#
#   docker build -t swarm-ray:0.1.0 .
#
# No secrets are baked in: Binance and Groq keys and the Ray token reach the pods as environment
# variables from Kubernetes Secrets (deploy/kuberay/, docs/kubernetes.md). The base image's Ray
# version must be the ray pin of constraints.txt.
FROM rayproject/ray:2.60.0-py311-cpu

USER 1000:100
ENV PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1
RUN mkdir -p /home/ray/swarm-ray
WORKDIR /home/ray/swarm-ray

# torch first and alone, from PyTorch's CPU index at the constraints' pin: PyPI's Linux wheel
# pulls several GB of CUDA libraries. Its own dependencies come with the project below.
ARG TORCH_INDEX_URL=https://download.pytorch.org/whl/cpu
COPY --chown=1000:100 constraints.txt ./
RUN pip install --no-deps --index-url "$TORCH_INDEX_URL" \
        "torch==$(sed -n 's/^torch==//p' constraints.txt)"

# The dependencies, in a layer of their own (rebuilt only when the packaging changes): an
# editable install of empty packages, which the code copied below fills in. Editable, so that
# the bundled configs/, data/ and models/ resolve from the project root as in a clone.
COPY --chown=1000:100 pyproject.toml README.md ./
RUN mkdir swarm_ray envs serve \
    && touch swarm_ray/__init__.py envs/__init__.py serve/__init__.py \
    && pip install -c constraints.txt -e .

COPY --chown=1000:100 swarm_ray ./swarm_ray
COPY --chown=1000:100 envs ./envs
COPY --chown=1000:100 serve ./serve
COPY --chown=1000:100 configs ./configs
COPY --chown=1000:100 models ./models
COPY --chown=1000:100 data ./data
COPY --chown=1000:100 deploy/seed_registry.sh ./deploy/seed_registry.sh

# Fail the build, not the first pod, on a broken install: the CLI and the Serve app import and
# torch is the CPU build.
RUN swarm-ray --help >/dev/null \
    && python -c "import serve.app, swarm_ray.runtime.swarm" \
    && python -c "import torch; assert torch.__version__.endswith('+cpu'), torch.__version__"
