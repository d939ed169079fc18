# Builds a side venv for a reference package that cannot share genembed's venv; sourced by official_env.sh and
# llm2vec_env.sh after they set
#   LABEL    the venv's name in messages
#   VENV     its folder
#   CHECK    Python that passes only where everything is installed at the wanted versions
#   DEPS     (an array) what the package really imports, at the versions it runs with
#   PACKAGE  the package itself, installed with --no-deps (its own pins do not install here)
# torch==2.13.0 goes in first (an exact pin: a looser spec pulls a huge CUDA build). Idempotent: a venv that
# passes CHECK is left as it is.
PY="${PYTHON:-python3}"

check() { "$VENV/bin/python" -c "$CHECK" 2>/dev/null; }

if [ -x "$VENV/bin/python" ] && check; then
  echo "$LABEL venv ready: $VENV"
  exit 0
fi

[ -x "$VENV/bin/python" ] || "$PY" -m venv "$VENV"
PIP=("$VENV/bin/python" -m pip install --disable-pip-version-check -q)
"${PIP[@]}" --upgrade pip
"${PIP[@]}" "torch==2.13.0"
"${PIP[@]}" "${DEPS[@]}"
"${PIP[@]}" --no-deps "$PACKAGE"

check || { echo "$LABEL venv incomplete: $VENV" >&2; exit 1; }
echo "$LABEL venv ready: $VENV"
