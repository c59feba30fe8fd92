"""Configuration (SPEC "Configuration"): `--config FILE` (TOML, keys named like the long flags),
EVSTREAM_<FLAG> for every long flag, precedence command line > environment > file > default, and
`--print-config`, whose output read back gives the same configuration with tokens masked. Errors
in the file are one line naming the file, the line and the key, with exit status 2.

The servers here are started with nothing but the flags each test gives (no --host/--port/--db
added), so what the file and the environment say is what they run with."""
import json
import os
import re
import subprocess
import unittest

import websockets

from evtest import (HOST, ClientTestCase, ServerProcess, async_wait_for, client_env, evstream_bin,
                    free_port, run_cli)

USAGE = 2


def settings(text):
    """The `key = value` lines of a printed configuration, comments and blank lines left out."""
    out = {}
    for line in text.splitlines():
        if line.startswith("#") or not line.strip():
            continue
        key, value = line.split(" = ", 1)
        out[key] = re.sub(r"\s+#.*$", "", value)  # "# from ..." notes
    return out


class ConfigServer(ServerProcess):
    """`evstream serve ARGS` with exactly those arguments and environment `env` (on top of the
    test's environment without EVSTREAM_*)."""

    def __init__(self, workdir, args, env=None, name="server"):
        super().__init__(workdir, args, name=name)
        self.env = client_env(env)

    def start(self):
        with open(self.stderr_path, "ab") as stderr:
            self.proc = subprocess.Popen([evstream_bin(), "serve", *self.args],
                                         stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                         stderr=stderr, cwd=self.workdir, env=self.env)
        self.url = self._read_url_line()
        return self


async def json_log(server, msg):
    """The first JSON log line of `server` with this msg, once written (the URL line on stdout can
    come first)."""
    def find():
        for line in server.log_text().splitlines():
            if line.startswith("{") and json.loads(line).get("msg") == msg:
                return json.loads(line)
        return None
    return await async_wait_for(find, 5, what=f"JSON log line {msg!r}")


class ConfigTest(ClientTestCase):

    def write(self, name, text):
        path = os.path.join(self.tmpdir, name)
        with open(path, "w", encoding="utf-8") as f:
            f.write(text)
        return path

    def serve(self, *args, env=None):
        server = ConfigServer(self.tmpdir, args, env=env, name=f"server{len(self.servers) + 1}")
        self.servers.append(server)
        return server.start()

    def print_config(self, sub, *args, env=None):
        code, out, err = run_cli(self.tmpdir, [sub, *args, "--print-config"], env=env)
        self.assertEqual((code, err), (0, ""), f"{sub} {args} --print-config")
        return out

    def fails(self, *args, env=None):
        """Runs a command that must fail with a usage error; its one stderr line."""
        code, out, err = run_cli(self.tmpdir, list(args), env=env)
        self.assertEqual((code, out), (USAGE, ""), err)
        self.assertRegex(err, r"^evstream: error: [^\n]+\n$", "one line on stderr")
        return err

    def base_file(self, name="serve.toml", **extra):
        """A serve config on a free port with its database in the temp dir."""
        port = free_port()
        lines = [f'host = "{HOST}"', f"port = {port}",
                 f'db = "{os.path.join(self.tmpdir, "file.db")}"']
        lines += [f"{key} = {value}" for key, value in extra.items()]
        return self.write(name, "\n".join(lines) + "\n"), port

    # -------------------------------------------------------------------------------------------

    async def test_file_only(self):
        path, port = self.base_file(**{"log-format": '"json"', "retain-age": '"30d"',
                                       "allow-origin": '["https://a.example", "https://b.example"]'})
        server = self.serve("--config", path)
        self.assertEqual(server.url, f"ws://{HOST}:{port}")
        listening = await json_log(server, "listening")  # log-format = "json"
        self.assertEqual(listening["db"], os.path.join(self.tmpdir, "file.db"))
        self.assertTrue(os.path.exists(os.path.join(self.tmpdir, "file.db")))
        # The listed origins (a list in the file) are allowed, others refused.
        await (await self.ws(f"{server.url}/ws/events",
                             origin="https://b.example")).close()
        with self.assertRaises(websockets.InvalidStatusCode) as refused:
            await self.ws(f"{server.url}/ws/events", origin="https://evil.example")
        self.assertEqual(refused.exception.status_code, 403)

    async def test_environment_overrides_file(self):
        path, file_port = self.base_file(**{"log-level": '"debug"'})
        env_port = free_port()
        server = self.serve("--config", path, env={"EVSTREAM_PORT": str(env_port),
                                                    "EVSTREAM_LOG_FORMAT": "json"})
        self.assertEqual(server.url, f"ws://{HOST}:{env_port}")
        await json_log(server, "listening")  # EVSTREAM_LOG_FORMAT=json
        printed = settings(self.print_config("serve", "--config", path,
                                             env={"EVSTREAM_PORT": str(env_port)}))
        self.assertEqual((printed["port"], printed["log-level"], printed["host"]),
                         (str(env_port), '"debug"', f'"{HOST}"'))
        # An empty variable is unset: the file's value stands.
        printed = settings(self.print_config("serve", "--config", path, env={"EVSTREAM_PORT": ""}))
        self.assertEqual(printed["port"], str(file_port))

    async def test_flag_overrides_environment(self):
        path, _ = self.base_file()
        flag_port = free_port()
        env = {"EVSTREAM_PORT": str(free_port()), "EVSTREAM_HOST": "127.0.0.2"}
        server = self.serve("--config", path, "--port", str(flag_port), "--host", HOST, env=env)
        self.assertEqual(server.url, f"ws://{HOST}:{flag_port}")
        out = self.print_config("serve", "--config", path, "--port", str(flag_port), env=env)
        self.assertIn(f"port = {flag_port}  # from --port\n", out)
        self.assertIn('host = "127.0.0.2"  # from EVSTREAM_HOST\n', out)
        self.assertRegex(out, r'\ndb = "[^"]*file\.db"  # from .*serve\.toml:3\n')

    async def test_print_config_round_trip(self):
        db = os.path.join(self.tmpdir, "rt.db")
        args = ["--host", HOST, "--port", "0", "--db", db, "--retain-age", "7d",
                "--allow-origin", "https://a.example", "--allow-origin", "*",
                "--client-queue-bytes", "2MiB", "--log-level", "debug", "--read-token", "r3ad"]
        first = self.print_config("serve", *args)
        # Every option of serve is there, set or commented out, each under its description.
        for key in ("host", "port", "db", "durability", "ping-interval", "client-queue",
                    "client-queue-bytes", "max-message-bytes", "max-clients", "retain-age",
                    "retain-events", "token", "read-token", "allow-origin", "cert", "key",
                    "log-format", "log-level", "nats", "nats-stream", "nats-replicas",
                    "nats-dedupe-window"):
            self.assertRegex(first, re.compile(r"^\n# .+\n(# )?" + re.escape(key) + " =", re.M), key)
        path = self.write("printed.toml", first)
        second = self.print_config("serve", "--config", path, env={"EVSTREAM_READ_TOKEN": "r3ad"})
        self.assertEqual(settings(second), settings(first))
        # And a server started from the printed file runs with it.
        server = self.serve("--config", path, env={"EVSTREAM_READ_TOKEN": "r3ad"})
        self.assertEqual((await server.wait_log("listening")).fields["db"], db)
        self.assertIn(f'"{db}"', self.print_config("serve", "--config", path))

        # A client's flags, lists and booleans too, and a template with quotes, spaces and '#'.
        tail_args = ["--url", "ws://a:1,ws://b:2", "--url", "ws://c:3", "--topic", "cams",
                     "--topic", "x", "-n", "5", "--json", "--format", '{"id":{id}} #{data.n} \'q\'',
                     "--retry-timeout", "1m"]
        first = self.print_config("tail", *tail_args)
        second = self.print_config("tail", "--config", self.write("tail.toml", first))
        self.assertEqual(settings(second), settings(first))
        self.assertEqual(settings(first)["json"], "true")
        self.assertEqual(settings(first)["no-color"], "false")

    async def test_tokens_are_masked(self):
        out = self.print_config("serve", "--read-token", "flag-s3cret",
                                env={"EVSTREAM_TOKEN": "env-s3cret"})
        self.assertNotIn("s3cret", out)
        self.assertIn('# token = "***"  # set by EVSTREAM_TOKEN', out)
        self.assertIn('# read-token = "***"  # set by --read-token', out)
        # The masked line is commented out: read back, the token comes from the environment.
        path = self.write("masked.toml", out.replace('port = 8000', 'port = 0'))
        server = self.serve("--config", path, "--db", os.path.join(self.tmpdir, "t.db"),
                            env={"EVSTREAM_TOKEN": "env-s3cret"})
        with self.assertRaises(websockets.InvalidStatusCode) as refused:
            await self.ws(f"{server.url}/ws/publish")
        self.assertEqual(refused.exception.status_code, 401)
        pub = await self.publisher(server, extra_headers={"Authorization": "Bearer env-s3cret"})
        self.assertEqual((await pub.publish({"a": 1})).type, "ack")
        # The mask itself is refused as a token, and a token is never echoed in an error.
        err = self.fails("serve", "--config", self.write("mask.toml", 'token = "***"\n'))
        self.assertIn("mask.toml:1: token", err)
        err = self.fails("serve", "--config",
                         self.write("two.toml", 'read-token = ["s3cret-a", "s3cret-b"]\n'))
        self.assertIn("two.toml:1: read-token", err)
        self.assertNotIn("s3cret", err)

    def test_unknown_key(self):
        path = self.write("typo.toml", '# comment\nhost = "127.0.0.1"\nprot = 8000\n')
        err = self.fails("serve", "--config", path)
        self.assertIn(f"{path}:3: unknown key \"prot\" (did you mean \"port\"?)", err)
        err = self.fails("serve", "--config", self.write("u.toml", 'retain_age = "1d"\n'))
        self.assertIn('u.toml:1: unknown key "retain_age" (did you mean "retain-age"?)', err)
        err = self.fails("serve", "--config", self.write("s.toml", 'port = 1\n[serve]\n'))
        self.assertIn("s.toml:2: sections such as [serve] are not used", err)
        # A key of another subcommand is unknown here.
        err = self.fails("tail", "--config", self.write("t.toml", "\n\nport = 1\n"))
        self.assertIn('t.toml:3: unknown key "port"', err)

    def test_bad_values(self):
        cases = [
            ("port = 99999\n", 1, "port", "not in range"),
            ('host = "x"\n\nretain-age = "30x"\n', 3, "retain-age", 'invalid duration "30x"'),
            ('durability = "fast"\n', 1, "durability", "fast not in {normal,full}"),
            ("client-queue-bytes = lots\n", 1, "client-queue-bytes", "invalid size"),
            ("log-level = debug info\n", 1, "log-level", "goes in quotes"),
            ('db = "x.db"\ndb = "y.db"\n', 2, "db", "given twice (also on line 1)"),
            ('host = "127.0.0.1\n', 1, "host", "not closed"),
        ]
        for text, line, key, reason in cases:
            with self.subTest(text=text):
                path = self.write("bad.toml", text)
                err = self.fails("serve", "--config", path)
                self.assertIn(f"{path}:{line}: {key}", err)
                self.assertIn(reason, err)
        err = self.fails("tail", "--config", self.write("b.toml", "json = maybe\n"))
        self.assertIn("b.toml:1: json", err)
        # Two options that exclude each other, in the file: both lines named.
        err = self.fails("tail", "--config", self.write("x.toml", "since = 5\nlast = 3\n"))
        self.assertIn("x.toml:2: last cannot be used with since (", err)
        self.assertIn("x.toml:1)", err)
        # A bad variable names the variable.
        err = self.fails("serve", "--print-config", env={"EVSTREAM_MAX_CLIENTS": "0"})
        self.assertIn("EVSTREAM_MAX_CLIENTS (--max-clients): ", err)

    def test_missing_file(self):
        path = os.path.join(self.tmpdir, "nope.toml")
        err = self.fails("serve", "--config", path)
        self.assertEqual(err, f"evstream: error: cannot read config file {path}: No such file or "
                              f"directory (pass an existing file to --config; evstream serve "
                              f"--print-config > FILE writes one)\n")
        err = self.fails("publish", "--config", self.tmpdir)
        self.assertIn("is a directory", err)

    async def test_the_command_line_source_wins_over_the_environments(self):
        """replay's --db and --url exclude each other: EVSTREAM_URL yields to --db."""
        server = self.start_server()
        await self.publish_many(server, [{"n": 1}])
        code, out, err = self.cli("replay", "--db", server.db,
                                  env={"EVSTREAM_URL": "ws://127.0.0.1:9"})
        self.assertEqual((code, err), (0, ""))
        self.assertEqual([json.loads(line)["data"] for line in out.splitlines()], [{"n": 1}])
        # Without --db, EVSTREAM_URL is the source.
        code, out, err = self.cli("replay", env={"EVSTREAM_URL": server.url})
        self.assertEqual((code, len(out.splitlines())), (0, 1), err)


if __name__ == "__main__":
    unittest.main()
