"""twilio-node, fresh from the npm registry, and the scripts that drive it against the service.

The tests install it themselves (`npm install twilio` into a temporary directory) and fail, not
skip, when npm cannot: a machine that cannot install it has not shown the face works.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path
from typing import Any


def install_twilio_node(root: Path) -> Path:
    """The node_modules directory of the registry's current twilio package, installed in root."""
    npm, node = shutil.which("npm"), shutil.which("node")
    assert npm and node, "node and npm are needed to test twilio-node"
    (root / "package.json").write_text('{"name": "recordings-twilio-node-test", "private": true}')
    installed = subprocess.run(
        [npm, "install", "--no-audit", "--no-fund", "--loglevel=error", "twilio"],
        cwd=root,
        capture_output=True,
        text=True,
        timeout=600,
        stdin=subprocess.DEVNULL,
    )
    assert installed.returncode == 0, f"npm install twilio failed:\n{installed.stderr}"
    assert (root / "node_modules" / "twilio" / "package.json").exists()
    return root / "node_modules"


def run_node(node_modules: Path, script: Path | str, config: object) -> Any:
    """Run ``script`` (a file, or the source of one) with ``config`` as its argument: the JSON
    it prints."""
    # No TWILIO_EDGE/TWILIO_REGION: they would rewrite the host.
    env = {k: v for k, v in os.environ.items() if not k.startswith("TWILIO_")}
    env["NODE_PATH"] = str(node_modules)
    program = [str(script)] if isinstance(script, Path) else ["-e", script]
    ran = subprocess.run(
        ["node", *program, json.dumps(config)],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        stdin=subprocess.DEVNULL,
    )
    assert ran.returncode == 0, ran.stderr
    return json.loads(ran.stdout)


_VALIDATE = """
const twilio = require("twilio");
const cases = JSON.parse(process.argv[1]);
console.log(JSON.stringify(cases.map(
  (c) => twilio.validateRequest(c.token, c.signature, c.url, c.params))));
"""


def node_validates(
    node_modules: Path, cases: list[tuple[str, str, str, dict[str, str]]]
) -> list[bool]:
    """twilio-node's ``validateRequest(token, signature, url, params)`` of each case, as an app
    calls it."""
    payload = [{"token": t, "signature": s, "url": u, "params": p} for t, s, u, p in cases]
    answers = run_node(node_modules, _VALIDATE, payload)
    assert isinstance(answers, list)
    return [bool(a) for a in answers]
