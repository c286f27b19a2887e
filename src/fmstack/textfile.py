"""Text files a user names on the command line (specs, cards): read as UTF-8, or refused with a
message that says which file, where the bad byte is and how to convert it. Knows nothing of what the
text means."""

from __future__ import annotations

from pathlib import Path

from fmstack.errors import InvalidInput, clip


def read_user_text(path: Path, what: str) -> str:
    """The text of ``path`` (``what`` names it in messages: "training spec", "card file")."""
    shown = clip(path)
    if path.exists() and not path.is_file() and not path.is_dir():
        # A named pipe or a device would block the read or never end; a spec or a card is a file.
        raise InvalidInput(
            f"{shown!r} is not a regular file (a named pipe or a device?): give the {what} file"
        )
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise InvalidInput(f"no {what} at {shown!r}: check the path") from None
    except IsADirectoryError:
        raise InvalidInput(f"{shown!r} is a folder: give the {what} file itself") from None
    except OSError as exc:
        raise InvalidInput(f"cannot read the {what} {shown!r}: {exc.strerror or exc}") from None
    try:
        return data.decode("utf-8-sig")  # -sig: a byte-order mark from a Windows editor is not text
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        raise InvalidInput(
            f"{shown}: not UTF-8 text (byte 0x{data[exc.start]:02x} on line {line}); save the {what} "
            f"as UTF-8, e.g. iconv -f latin1 -t utf-8 {shown} > converted && mv converted {shown}"
        ) from None
