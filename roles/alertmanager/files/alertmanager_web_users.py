"""Print the bcrypt hashes of Alertmanager's web users as JSON, reusing the current ones.

Reads {"config": PATH, "cost": N, "users": [{"name": ..., "password": ...}]} on stdin and
prints {"NAME": "HASH", ...}. A user keeps the hash already in PATH (the web configuration,
basic_auth_users) while it still matches the password at cost N; only a new user, a new
password or a new cost gets a new hash (a fresh salt). So the file changes only when a
password does, and a second run changes nothing. Passwords never reach the output.
"""

import json
import re
import sys

import bcrypt

# The role writes each user as one line:   NAME: "HASH"
LINE = re.compile(r'^\s+([A-Za-z0-9_.@-]+): "(\$2[aby]\$(\d\d)\$[./A-Za-z0-9]{53})"\s*$')


def current_hashes(path):
    try:
        with open(path, encoding="utf-8") as handle:
            return {match[1]: (match[2], int(match[3])) for match in map(LINE.match, handle) if match}
    except FileNotFoundError:
        return {}


def main():
    request = json.load(sys.stdin)
    cost = int(request["cost"])
    known = current_hashes(request["config"])
    hashes = {}
    for user in request["users"]:
        password = str(user["password"]).encode()
        old, old_cost = known.get(user["name"], ("", 0))
        if old and old_cost == cost and bcrypt.checkpw(password, old.encode()):
            hashes[user["name"]] = old
        else:
            hashes[user["name"]] = bcrypt.hashpw(password, bcrypt.gensalt(rounds=cost)).decode()
    json.dump(hashes, sys.stdout)


if __name__ == "__main__":
    main()
