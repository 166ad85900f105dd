"""Rewrite README.md's table of config fields from the schema (jaxgan/config.py).

The table lives between the markers below; tests/test_config.py fails when it drifts
from `config.describe()`, and this script is the fix:

  python -m tools.readme_fields
"""
import os

from jaxgan import config

START, END = "<!-- fields:start -->", "<!-- fields:end -->"
README = os.path.join(os.path.dirname(__file__), "..", "README.md")


def table_in(text: str) -> str:
  """The text between the markers (no surrounding newlines)."""
  return text.split(START, 1)[1].split(END, 1)[0].strip("\n")


def main():
  with open(README) as f:
    text = f.read()
  head, rest = text.split(START, 1)
  tail = rest.split(END, 1)[1]
  with open(README, "w") as f:
    f.write(f"{head}{START}\n{config.describe()}\n{END}{tail}")


if __name__ == "__main__":
  main()
