"""twilio-node, installed fresh from the npm registry, and its webhook validator called as an
app calls it (``twilio.validateRequest``)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

_VALIDATE = """
const twilio = require("twilio");
const cases = JSON.parse(process.argv[1]);
console.log(JSON.stringify(cases.map(
  (c) => twilio.validateRequest(c.token, c.signature, c.url, c.params))));
"""


def install_twilio_node(root: Path) -> Path:
    """``npm install twilio`` into ``root``; its node_modules. Fails (never skips) without npm."""
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


def node_validates(
    node_modules: Path, cases: list[tuple[str, str, str, dict[str, str]]]
) -> list[bool]:
    """twilio-node's ``validateRequest(token, signature, url, params)`` of each case."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("TWILIO_")}
    env["NODE_PATH"] = str(node_modules)
    payload = [{"token": t, "signature": s, "url": u, "params": p} for t, s, u, p in cases]
    ran = subprocess.run(
        ["node", "-e", _VALIDATE, json.dumps(payload)],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        stdin=subprocess.DEVNULL,
    )
    assert ran.returncode == 0, ran.stderr
    answers = json.loads(ran.stdout)
    assert isinstance(answers, list)
    return [bool(a) for a in answers]
