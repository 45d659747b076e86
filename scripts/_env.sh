# Sourced by the scripts: create (or reuse) .venv and install fcnedge with the extras the scripts need.
# PYTHON picks the interpreter (default python3, >= 3.10).
PY=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
  "$PY" -m venv .venv
fi
VPY=.venv/bin/python
"$VPY" -m pip install -q --upgrade pip setuptools wheel
"$VPY" -m pip install -q -e ".[${FCNEDGE_EXTRAS:-torch,dev,plot,openvino,ray}]"
