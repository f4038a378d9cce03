"""Make a secret API key once: python tools/api_key.py PATH [--template EXAMPLE].

Without --template, PATH gets a fresh key (``secrets.token_urlsafe(32)``, 256 random bits)
and a newline. With --template, PATH gets a copy of the env-file example in which every
empty key setting it names (``CATALOG_API_KEYS=``, ``GATEWAY_CATALOG_KEY=``) is filled with
one fresh key, so the catalog and the gateway share it. PATH is created with mode 0600; an
existing PATH is kept as it is (only its mode is narrowed), so the key survives re-runs.
The key is never printed.
"""

import argparse
import os
import re
import secrets
import sys
from pathlib import Path

# The settings an env file fills with the key: the catalog accepts it, the gateway sends it.
KEY_SETTINGS = ("CATALOG_API_KEYS", "GATEWAY_CATALOG_KEY")
_EMPTY_SETTING = re.compile(rf"^({'|'.join(KEY_SETTINGS)})=[ \t]*$", re.MULTILINE)


def new_key() -> str:
    """A fresh key: 32 random bytes, URL-safe base64 (43 characters, no padding)."""
    return secrets.token_urlsafe(32)


def fill_template(template: str, key: str) -> str:
    """The template with each empty key setting set to key; ValueError if it has none."""
    filled, count = _EMPTY_SETTING.subn(lambda match: f"{match.group(1)}={key}", template)
    if count == 0:
        names = " or ".join(f"{name}=" for name in KEY_SETTINGS)
        raise ValueError(f"the template has no empty {names} line to fill")
    return filled


def write_once(path: Path, text: str) -> bool:
    """Create path (mode 0600) holding text; False, leaving it untouched, if it exists."""
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        # O_EXCL: two runs at once cannot both write, and a key is never replaced.
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        path.chmod(0o600)
        return False
    with os.fdopen(fd, "w") as file:
        file.write(text)
    return True


def main(argv: list[str] | None = None) -> int:
    """Write the key file or env file unless it exists; 2 when the template has no key setting."""
    parser = argparse.ArgumentParser(prog="python tools/api_key.py", description=__doc__)
    parser.add_argument("path", type=Path, help="the key file or env file to create")
    parser.add_argument("--template", type=Path, help="an env-file example to fill in")
    args = parser.parse_args(argv)
    key = new_key()
    if args.template is None:
        text = key + "\n"
    else:
        try:
            text = fill_template(args.template.read_text(), key)
        except (OSError, ValueError) as exc:
            print(f"error: {args.template}: {exc}", file=sys.stderr)
            return 2
    if write_once(args.path, text):
        print(f"wrote a new key to {args.path} (mode 0600; keep it out of version control)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
