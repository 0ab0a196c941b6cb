// Tests of control/config.ts with the runtime.toml files in tests/fixtures/config/.
import assert from "node:assert/strict";
import { fileURLToPath } from "node:url";
import {
  DEFAULT_MAX_PAYLOAD_BYTES,
  defaultConfig,
  loadConfig,
  resolveConfig,
  type RuntimeConfig,
  type RuntimeConfigOptions,
} from "../control/config.ts";
import { ConfigError } from "../errors.ts";

const FIXTURES = new URL("./fixtures/config/", import.meta.url);
const fixture = (name: string): string =>
  fileURLToPath(new URL(name, FIXTURES));
const MODULE_VENV_PYTHON = fileURLToPath(
  new URL("../.venv/bin/python", import.meta.url),
);

function defaults(
  python: Partial<RuntimeConfig["python"]> = {},
): RuntimeConfig {
  return {
    maxProcessesPerSession: undefined,
    channelCapacity: 8,
    initTimeoutSecs: 60,
    cleanupGracePeriodSecs: 5,
    publishTimeoutSecs: 5,
    pingIntervalSecs: 1,
    pingTimeoutSecs: 30,
    enableBackpressure: true,
    maxPayloadBytes: 64 * 1024 * 1024 + 128,
    python: {
      executable: MODULE_VENV_PYTHON,
      venvPath: undefined,
      extraPaths: [],
      env: {},
      envs: {},
      ...python,
    },
    hosts: {},
  };
}

async function configError(
  fn: () => unknown,
): Promise<ConfigError> {
  try {
    await fn();
  } catch (e) {
    assert.ok(e instanceof ConfigError, `expected ConfigError, got ${e}`);
    return e;
  }
  assert.fail("no ConfigError was thrown");
}

Deno.test("defaults: no file, no options", async () => {
  // This repository has a .venv, so the default executable is its python.
  Deno.statSync(MODULE_VENV_PYTHON);
  assert.deepEqual(await loadConfig(), defaults());
  assert.deepEqual(defaultConfig(), defaults());
  assert.deepEqual(resolveConfig(), defaults());
  assert.deepEqual(await loadConfig(fixture("empty.toml")), defaults());
  assert.equal(DEFAULT_MAX_PAYLOAD_BYTES, 67108992);
});

Deno.test("without a module .venv the default executable is python3", async () => {
  // A copy of the module in a folder with no .venv next to it.
  const dir = await Deno.makeTempDir();
  try {
    await Deno.mkdir(`${dir}/control`);
    await Deno.mkdir(`${dir}/protocol`);
    await Deno.mkdir(`${dir}/pipeline`);
    await Deno.mkdir(`${dir}/data`);
    for (
      const f of [
        "control/config.ts",
        "data/_checkout.ts",
        "data/_env.ts",
        "errors.ts",
        "protocol/contracts.ts",
        "pipeline/_shape.ts",
      ]
    ) {
      await Deno.copyFile(new URL(`../${f}`, import.meta.url), `${dir}/${f}`);
    }
    // A .venv next to a copy that is not a checkout (no ffi/, no python/)
    // is not the module's: the default stays python3.
    await Deno.mkdir(`${dir}/.venv/bin`, { recursive: true });
    await Deno.writeTextFile(`${dir}/.venv/bin/python`, "");
    const mod = await import(`file://${dir}/control/config.ts`);
    assert.equal(mod.defaultConfig().python.executable, "python3");
    assert.equal(
      mod.resolveConfig({}, { python: { venvPath: "/v" } }).python.executable,
      "/v/bin/python",
    );
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("a file with every key", async () => {
  for (const path of [fixture("full.toml"), new URL("full.toml", FIXTURES)]) {
    assert.deepEqual(await loadConfig(path), {
      maxProcessesPerSession: 6,
      channelCapacity: 16,
      initTimeoutSecs: 12.5,
      cleanupGracePeriodSecs: 0,
      publishTimeoutSecs: 2.5,
      pingIntervalSecs: 0.5,
      pingTimeoutSecs: 0,
      enableBackpressure: false,
      maxPayloadBytes: 1048704,
      python: {
        executable: "/usr/bin/python3",
        venvPath: "/opt/venv",
        extraPaths: ["/opt/nodes", "/srv/models"],
        env: { OMP_NUM_THREADS: "1", "WITH SPACE": "x y", EMPTY: "" },
        envs: {
          vision: {
            executable: "/opt/vision/bin/python",
            venvPath: "/opt/vision",
          },
          tools: {
            // Relative to the file's folder.
            executable: fixture("envs/tools/bin/python"),
            venvPath: undefined,
          },
        },
      },
      hosts: {},
    });
  }
});

Deno.test("relative paths in a file resolve against its directory", async () => {
  const dir = fileURLToPath(FIXTURES).replace(/\/$/, "");
  const parent = dir.replace(/\/[^/]+$/, "");
  const c = await loadConfig(fixture("relative.toml"));
  assert.equal(c.python.venvPath, `${parent}/venvs/asr`);
  assert.equal(c.python.executable, `${parent}/venvs/asr/bin/python`);
  assert.deepEqual(c.python.extraPaths, [
    `${dir}/nodes`,
    `${dir}/more/nodes`,
    "/abs/nodes",
  ]);
  // Environment values are not paths.
  assert.deepEqual(c.python.env, { HF_HOME: "relative/stays/relative" });
  // An explicit executable wins over the venv's, and a bare name is not a path.
  const r = await loadConfig(fixture("relative_executable.toml"));
  assert.equal(r.python.executable, `${dir}/bin/python`);
  assert.equal(r.python.venvPath, `${dir}/venv`);
  const b = await loadConfig(fixture("bare_executable.toml"));
  assert.equal(b.python.executable, "python3.11");
});

Deno.test("options given in code win over the file", async () => {
  const c = await loadConfig(fixture("full.toml"), {
    channelCapacity: 2,
    maxProcessesPerSession: undefined, // undefined means "not given"
    enableBackpressure: true,
    python: {
      extraPaths: ["rel/in/code"],
      env: { OMP_NUM_THREADS: "4", NEW: "1" },
    },
  });
  assert.equal(c.channelCapacity, 2);
  assert.equal(c.maxProcessesPerSession, 6);
  assert.equal(c.enableBackpressure, true);
  assert.equal(c.initTimeoutSecs, 12.5);
  // Arrays are replaced, env tables merged key by key; code paths stay as given.
  assert.deepEqual(c.python.extraPaths, ["rel/in/code"]);
  assert.deepEqual(c.python.env, {
    OMP_NUM_THREADS: "4",
    "WITH SPACE": "x y",
    EMPTY: "",
    NEW: "1",
  });
  assert.equal(c.python.executable, "/usr/bin/python3");
  // A venv given in code gives the executable when none is set anywhere.
  const v = await loadConfig(fixture("relative.toml"), {
    python: { venvPath: "/code/venv" },
  });
  assert.equal(v.python.executable, "/code/venv/bin/python");
  const e = await loadConfig(undefined, {
    python: { venvPath: "/code/venv", executable: "/usr/bin/python3" },
  });
  assert.equal(e.python.executable, "/usr/bin/python3");
  // The result is a fresh object every time.
  const opts: RuntimeConfigOptions = {
    python: { extraPaths: ["a"], env: { A: "1" } },
  };
  const x = resolveConfig({}, opts);
  x.python.extraPaths.push("b");
  x.python.env.B = "2";
  assert.deepEqual(opts, { python: { extraPaths: ["a"], env: { A: "1" } } });
});

Deno.test("hosts: [multiprocess.hosts.<name>] with defaults and relative TLS files", async () => {
  const dir = fileURLToPath(FIXTURES).replace(/\/$/, "");
  const c = await loadConfig(fixture("hosts.toml"));
  assert.deepEqual(c.hosts, {
    gpu: {
      endpoint: "tcp/10.0.0.3:7447",
      leaseSecs: 10,
      connectTimeoutSecs: 10,
    },
    edge: {
      endpoint: "tls/edge.lan:7448",
      leaseSecs: 2.5,
      connectTimeoutSecs: 3,
      tlsRootCa: `${dir}/certs/ca.pem`,
      tlsCert: "/etc/rmp/client.pem",
      tlsKey: `${dir}/certs/client.key`,
    },
    v6: {
      endpoint: "quic/[fd00::3]:7447",
      leaseSecs: 10,
      connectTimeoutSecs: 10,
      tlsRootCa: "/etc/rmp/ca.pem",
    },
  });
  // Other sections keep their defaults.
  assert.deepEqual({ ...c, hosts: {} }, defaults());
});

Deno.test("hosts given in code merge over the file's, name by name", async () => {
  const c = await loadConfig(fixture("hosts.toml"), {
    hosts: {
      gpu: { endpoint: "quic/10.0.0.9:7500", tlsRootCa: "rel/ca.pem" },
      lab: { endpoint: "tcp/lab:7447", leaseSecs: 1, connectTimeoutSecs: 2 },
    },
  });
  assert.deepEqual(Object.keys(c.hosts), ["gpu", "edge", "v6", "lab"]);
  // A host given in code replaces the file's; code paths stay as given.
  assert.deepEqual(c.hosts.gpu, {
    endpoint: "quic/10.0.0.9:7500",
    leaseSecs: 10,
    connectTimeoutSecs: 10,
    tlsRootCa: "rel/ca.pem",
  });
  assert.deepEqual(c.hosts.lab, {
    endpoint: "tcp/lab:7447",
    leaseSecs: 1,
    connectTimeoutSecs: 2,
  });
  assert.equal(c.hosts.edge.leaseSecs, 2.5);
  // A resolved configuration passes back in as options.
  assert.deepEqual(resolveConfig({}, { hosts: c.hosts }).hosts, c.hosts);
  // An explicit undefined is "not given"; names are own keys only.
  const u = resolveConfig({}, {
    hosts: { ["__proto__"]: { endpoint: "tcp/h:1", leaseSecs: undefined } },
  });
  assert.ok(Object.hasOwn(u.hosts, "__proto__"));
  assert.equal(u.hosts["__proto__"].leaseSecs, 10);
  assert.equal(Object.getPrototypeOf(u.hosts), Object.prototype);
  // Endpoints: every scheme, names and IPv6 addresses.
  for (
    const endpoint of [
      "tcp/127.0.0.1:1",
      "tls/gpu-box.example.org:65535",
      "quic/[::1]:7447",
    ]
  ) {
    assert.equal(
      resolveConfig({}, { hosts: { h: { endpoint } } }).hosts.h.endpoint,
      endpoint,
    );
  }
});

Deno.test("boundary values are accepted", () => {
  const c = resolveConfig({
    multiprocess: {
      max_payload_bytes: 129,
      channel_capacity: 1,
      init_timeout_secs: 0.001,
      cleanup_grace_period_secs: 86400,
    },
  });
  assert.equal(c.maxPayloadBytes, 129);
  assert.equal(c.channelCapacity, 1);
  assert.equal(
    resolveConfig({}, { maxPayloadBytes: 1024 ** 3, channelCapacity: 1024 })
      .maxPayloadBytes,
    1024 ** 3,
  );
});

// [fixture, dotted key, message after the key and file]
const FILE_ERRORS: [string, string, string][] = [
  [
    "unknown_top",
    "server",
    "unknown key (known: multiprocess)",
  ],
  [
    "unknown_key",
    "multiprocess.chanel_capacity",
    "unknown key (known: max_processes_per_session, channel_capacity, init_timeout_secs, cleanup_grace_period_secs, publish_timeout_secs, ping_interval_secs, ping_timeout_secs, enable_backpressure, max_payload_bytes, hosts, python)",
  ],
  [
    "unknown_python_key",
    "multiprocess.python.venv",
    "unknown key (known: executable, venv_path, extra_paths, env, envs)",
  ],
  [
    "envs_bad_name",
    'multiprocess.python.envs."bad name"',
    "is not a valid environment name (letters, digits, _ and - only)",
  ],
  [
    "envs_both",
    "multiprocess.python.envs.vision",
    "gives both `venv` and `executable`: give one",
  ],
  [
    "envs_neither",
    "multiprocess.python.envs.vision",
    "needs `venv` or `executable`",
  ],
  [
    "envs_unknown_key",
    "multiprocess.python.envs.vision.venv_path",
    "unknown key (known: venv, executable)",
  ],
  [
    "envs_not_table",
    "multiprocess.python.envs",
    "must be a table of tables, got a string",
  ],
  [
    "envs_entry_not_table",
    "multiprocess.python.envs.vision",
    "must be a table, got a string",
  ],
  ["multiprocess_not_table", "multiprocess", "must be a table, got a number"],
  ["python_not_table", "multiprocess.python", "must be a table, got a string"],
  [
    "capacity_zero",
    "multiprocess.channel_capacity",
    "must be between 1 and 1024, got 0",
  ],
  [
    "capacity_negative",
    "multiprocess.channel_capacity",
    "must be between 1 and 1024, got -4",
  ],
  [
    "capacity_fraction",
    "multiprocess.channel_capacity",
    "must be an integer, got 2.5",
  ],
  [
    "capacity_too_big",
    "multiprocess.channel_capacity",
    "must be between 1 and 1024, got 4096",
  ],
  [
    "capacity_string",
    "multiprocess.channel_capacity",
    "must be an integer, got a string",
  ],
  [
    "max_processes_zero",
    "multiprocess.max_processes_per_session",
    "must be a positive integer, got 0",
  ],
  [
    "init_timeout_zero",
    "multiprocess.init_timeout_secs",
    "must be greater than 0 and at most 86400, got 0",
  ],
  [
    "init_timeout_string",
    "multiprocess.init_timeout_secs",
    "must be a number, got a string",
  ],
  [
    "init_timeout_huge",
    "multiprocess.init_timeout_secs",
    "must be greater than 0 and at most 86400, got 1000000000",
  ],
  [
    "cleanup_negative",
    "multiprocess.cleanup_grace_period_secs",
    "must be at least 0 and at most 86400, got -1",
  ],
  [
    "publish_timeout_zero",
    "multiprocess.publish_timeout_secs",
    "must be greater than 0 and at most 86400, got 0",
  ],
  [
    "backpressure_string",
    "multiprocess.enable_backpressure",
    "must be a boolean, got a string",
  ],
  [
    "payload_too_small",
    "multiprocess.max_payload_bytes",
    "must be between 129 and 1073741824 bytes, got 128",
  ],
  [
    "payload_too_big",
    "multiprocess.max_payload_bytes",
    "must be between 129 and 1073741824 bytes, got 1073741825",
  ],
  [
    "payload_date",
    "multiprocess.max_payload_bytes",
    "must be an integer, got a date",
  ],
  ["executable_empty", "multiprocess.python.executable", "must not be empty"],
  [
    "venv_path_number",
    "multiprocess.python.venv_path",
    "must be a string, got a number",
  ],
  [
    "extra_paths_string",
    "multiprocess.python.extra_paths",
    "must be an array of strings, got a string",
  ],
  [
    "extra_paths_item",
    "multiprocess.python.extra_paths[1]",
    "must be a string, got a number",
  ],
  [
    "env_not_string",
    "multiprocess.python.env.OMP_NUM_THREADS",
    "must be a string, got a number",
  ],
  [
    "env_bad_name",
    'multiprocess.python.env."A=B"',
    'is not a valid environment variable name (empty, or contains "=" or NUL)',
  ],
  [
    "env_not_table",
    "multiprocess.python.env",
    "must be a table of strings, got an array",
  ],
  [
    "hosts_local",
    "multiprocess.hosts.local",
    '"local" is reserved: it means this host (a node without host, or with host = "local", runs here); give the remote host another name',
  ],
  [
    "hosts_bad_scheme",
    "multiprocess.hosts.gpu.endpoint",
    'scheme "udp" of "udp/10.0.0.3:7447" is not supported: use tcp, tls or quic (for example "tcp/10.0.0.3:7447")',
  ],
  [
    "hosts_no_port",
    "multiprocess.hosts.gpu.endpoint",
    'must be tcp/<address>:<port> (for example "tcp/10.0.0.3:7447"; an IPv6 address in brackets, "tcp/[fd00::3]:7447"), got "tcp/10.0.0.3": the port is missing or the address is malformed',
  ],
  [
    "hosts_no_scheme",
    "multiprocess.hosts.gpu.endpoint",
    'must be a Zenoh locator <scheme>/<address>:<port> with scheme tcp, tls or quic (for example "tcp/10.0.0.3:7447"), got "10.0.0.3:7447"',
  ],
  [
    "hosts_port_range",
    "multiprocess.hosts.gpu.endpoint",
    'port 0 of "tcp/10.0.0.3:0" is out of range (1 to 65535)',
  ],
  [
    "hosts_no_endpoint",
    "multiprocess.hosts.gpu",
    'needs `endpoint` (the host agent\'s Zenoh locator, for example "tcp/10.0.0.3:7447")',
  ],
  [
    "hosts_lease_zero",
    "multiprocess.hosts.gpu.lease_secs",
    "must be greater than 0 and at most 86400, got 0",
  ],
  [
    "hosts_timeout_string",
    "multiprocess.hosts.gpu.connect_timeout_secs",
    "must be a number, got a string",
  ],
  [
    "hosts_unknown_key",
    "multiprocess.hosts.gpu.lease",
    "unknown key (known: endpoint, lease_secs, connect_timeout_secs, tls_root_ca, tls_cert, tls_key)",
  ],
  [
    "hosts_bad_name",
    'multiprocess.hosts."gpu.lab"',
    "is not a valid host name (letters, digits, _ and -, starting with a letter or _, at most 64 characters)",
  ],
  [
    "hosts_not_table",
    "multiprocess.hosts",
    "must be a table of tables, got a string",
  ],
  [
    "hosts_entry_not_table",
    "multiprocess.hosts.gpu",
    "must be a table, got a string",
  ],
  [
    "hosts_cert_without_key",
    "multiprocess.hosts.gpu",
    "gives `tls_cert` without `tls_key`: mutual TLS needs both",
  ],
  [
    "hosts_tls_on_tcp",
    "multiprocess.hosts.gpu",
    "gives `tls_root_ca` but its endpoint tcp/10.0.0.3:7447 is plain TCP: use a tls/ or quic/ endpoint, or drop the TLS keys",
  ],
];

Deno.test("every bad file value is a ConfigError naming the key and the file", async () => {
  for (const [name, key, message] of FILE_ERRORS) {
    const file = fixture(`invalid/${name}.toml`);
    const e = await configError(() => loadConfig(file));
    assert.equal(e.key, key, name);
    assert.equal(e.file, file, name);
    assert.equal(
      e.message,
      `Invalid key "${key}" in ${file}: ${message}`,
      name,
    );
  }
  // Every fixture in invalid/ is covered (syntax.toml has its own test).
  const names = [...Deno.readDirSync(fixture("invalid"))].map((e) => e.name)
    .sort();
  assert.deepEqual(
    names,
    [...FILE_ERRORS.map(([n]) => `${n}.toml`), "syntax.toml"].sort(),
  );
});

Deno.test("invalid TOML is a ConfigError with the file and the line", async () => {
  const file = fixture("invalid/syntax.toml");
  const e = await configError(() => loadConfig(file));
  assert.equal(e.file, file);
  assert.equal(e.key, undefined);
  assert.equal(
    e.message,
    `Cannot load ${file}: invalid TOML at line 3, column 21: invalid value`,
  );
});

Deno.test("a missing file given by path is a ConfigError", async () => {
  const file = fixture("nope.toml");
  const e = await configError(() => loadConfig(file));
  assert.equal(e.file, file);
  assert.equal(e.message, `Cannot load ${file}: file not found`);
  assert.ok(e.cause instanceof Deno.errors.NotFound);
});

Deno.test("options given in code are validated too, without a file", async () => {
  const cases: [RuntimeConfigOptions, string, string][] = [
    [
      { channelCapacity: 0 },
      "channelCapacity",
      "must be between 1 and 1024, got 0",
    ],
    [
      { channelCapacity: 1.5 },
      "channelCapacity",
      "must be an integer, got 1.5",
    ],
    [
      { maxProcessesPerSession: -1 },
      "maxProcessesPerSession",
      "must be a positive integer, got -1",
    ],
    [
      { initTimeoutSecs: NaN },
      "initTimeoutSecs",
      "must be greater than 0 and at most 86400, got NaN",
    ],
    [
      { initTimeoutSecs: Infinity },
      "initTimeoutSecs",
      "must be greater than 0 and at most 86400, got Infinity",
    ],
    [
      { maxPayloadBytes: 2 ** 30 + 1 },
      "maxPayloadBytes",
      "must be between 129 and 1073741824 bytes, got 1073741825",
    ],
    [
      { enableBackpressure: 1 } as unknown as RuntimeConfigOptions,
      "enableBackpressure",
      "must be a boolean, got a number",
    ],
    [
      { channel_capacity: 4 } as unknown as RuntimeConfigOptions,
      "channel_capacity",
      "unknown option (known: maxProcessesPerSession, channelCapacity, initTimeoutSecs, cleanupGracePeriodSecs, publishTimeoutSecs, pingIntervalSecs, pingTimeoutSecs, enableBackpressure, maxPayloadBytes, hosts, python)",
    ],
    [
      { python: { venv_path: "/x" } } as unknown as RuntimeConfigOptions,
      "python.venv_path",
      "unknown option (known: executable, venvPath, extraPaths, env, envs)",
    ],
    [
      { python: "python3" } as unknown as RuntimeConfigOptions,
      "python",
      "must be an object, got a string",
    ],
    [
      { python: { extraPaths: ["a", 3] } } as unknown as RuntimeConfigOptions,
      "python.extraPaths[1]",
      "must be a string, got a number",
    ],
    [
      { python: { env: { FOO: 1 } } } as unknown as RuntimeConfigOptions,
      "python.env.FOO",
      "must be a string, got a number",
    ],
    [
      { python: { env: { "": "x" } } },
      'python.env.""',
      'is not a valid environment variable name (empty, or contains "=" or NUL)',
    ],
    [
      { python: { env: { A: "x\0y" } } },
      "python.env.A",
      "must not contain a NUL character",
    ],
    [{ python: { executable: "" } }, "python.executable", "must not be empty"],
    [
      { hosts: { local: { endpoint: "tcp/127.0.0.1:7447" } } },
      "hosts.local",
      '"local" is reserved: it means this host (a node without host, or with host = "local", runs here); give the remote host another name',
    ],
    [
      { hosts: { gpu: {} } } as unknown as RuntimeConfigOptions,
      "hosts.gpu",
      'needs `endpoint` (the host agent\'s Zenoh locator, for example "tcp/10.0.0.3:7447")',
    ],
    [
      {
        hosts: { gpu: { endpoint: "tcp/h:1", lease_secs: 3 } },
      } as unknown as RuntimeConfigOptions,
      "hosts.gpu.lease_secs",
      "unknown option (known: endpoint, leaseSecs, connectTimeoutSecs, tlsRootCa, tlsCert, tlsKey)",
    ],
    [
      { hosts: { gpu: { endpoint: "tls/h:1", tlsKey: "k" } } },
      "hosts.gpu",
      "gives `tlsKey` without `tlsCert`: mutual TLS needs both",
    ],
    [
      { hosts: { gpu: { endpoint: "tcp/h:1", connectTimeoutSecs: -1 } } },
      "hosts.gpu.connectTimeoutSecs",
      "must be greater than 0 and at most 86400, got -1",
    ],
    [
      { hosts: { gpu: "tcp/h:1" } } as unknown as RuntimeConfigOptions,
      "hosts.gpu",
      "must be an object, got a string",
    ],
  ];
  for (const [opts, key, message] of cases) {
    const e = await configError(() => loadConfig(fixture("full.toml"), opts));
    assert.equal(e.key, key);
    assert.equal(e.file, undefined, key);
    assert.equal(e.message, `Invalid key "${key}": ${message}`);
    const r = await configError(() => resolveConfig({}, opts));
    assert.equal(r.message, e.message);
  }
  // File values are checked before code options: a bad file wins.
  const f = await configError(() =>
    loadConfig(fixture("invalid/capacity_zero.toml"), { channelCapacity: 0 })
  );
  assert.equal(f.file, fixture("invalid/capacity_zero.toml"));
});

Deno.test("resolveConfig names the file it is given", () => {
  let caught: unknown;
  try {
    resolveConfig({ multiprocess: { channel_capacity: "x" } }, {}, {
      file: "/etc/runtime.toml",
    });
  } catch (e) {
    caught = e;
  }
  assert.ok(caught instanceof ConfigError);
  assert.equal(
    caught.message,
    'Invalid key "multiprocess.channel_capacity" in /etc/runtime.toml: must be an integer, got a string',
  );
  assert.equal(
    resolveConfig({ multiprocess: { python: { venv_path: "v" } } }, {}, {
      file: "/etc/rt/runtime.toml",
    }).python.venvPath,
    "/etc/rt/v",
  );
});

Deno.test("a top-level [hosts.<name>] table says to write [multiprocess.hosts.<name>]", () => {
  assert.throws(
    () =>
      resolveConfig({ hosts: { gpu: { endpoint: "tcp/10.0.0.3:7447" } } }, {}),
    (e: unknown) =>
      e instanceof ConfigError &&
      e.message.includes("unknown key (known: multiprocess)") &&
      e.message.includes("write [multiprocess.hosts.<name>]"),
  );
});
