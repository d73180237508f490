"""Offline stand-in for the pip 24.2 bootstrap script that ansible-test downloads.

ansible-test runs the script in a fresh virtual environment with pip's install arguments
(for example `pip==24.2 --no-setuptools --no-wheel`). This one bootstraps pip from the
interpreter's own ensurepip, then installs what was asked for from the package index.
"""

import subprocess
import sys

subprocess.check_call([sys.executable, "-m", "ensurepip", "--upgrade"])
args = [arg for arg in sys.argv[1:] if arg not in ("--no-setuptools", "--no-wheel")]
subprocess.check_call([sys.executable, "-m", "pip", "install", "--disable-pip-version-check", "--quiet"] + args)
