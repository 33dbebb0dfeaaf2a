//! The edges of the script API on a real cluster: the raw command in both its forms and its
//! guard, `sleep` on any number, Ctrl-C before and after connecting, rhai's limits, `import`.

use crate::support::{TestCluster, runbook, script};

fn config_get(c: &TestCluster, i: usize, name: &str) -> String {
    let v: Vec<String> = redis::cmd("CONFIG").arg("GET").arg(name).query(&mut c.conn(i)).unwrap();
    v[1].clone()
}

#[test]
fn raw_command_in_both_forms_and_destructive_ones_guarded() {
    let c = TestCluster::start(3, 0);
    let seed = c.seed();
    let port = c.port(1);
    let (_d1, reads) = script(&format!(
        "let c = cluster();\nlet n = c.node({port});\n\
         let info = c.command(n, \"CLUSTER INFO\");\n\
         print(`state ok: ${{info.contains(\"cluster_state:ok\")}}`);\n\
         let mm = c.command({port}, [\"CONFIG\", \"GET\", \"maxmemory-samples\"]);\n\
         print(`samples: ${{mm[1]}}`);\n"
    ));
    for dry in [false, true] {
        let mut args = vec!["run", reads.as_str(), "-c", seed.as_str()];
        if dry {
            args.push("--dry-run");
        }
        runbook(&args).run().expect_code(0).stdout_has("state ok: true").stdout_has("samples: 5");
    }
    runbook(&["lint", &reads]).run().expect_code(0);

    // A write is sent by a real run, only recorded by a dry run.
    let (_d2, write) = script(&format!("let c = cluster();\nc.command({port}, \"CONFIG REWRITE\");\n"));
    runbook(&["run", &write, "-c", &seed, "--dry-run"]).run().expect_code(0).stdout_has("CONFIG REWRITE");

    // A destructive one needs a confirmation: refused with nothing sent, then sent once confirmed.
    let (_d3, unconfirmed) = script(&format!(
        "let c = cluster();\nc.command({port}, [\"CONFIG\", \"SET\", \"maxmemory-samples\", \"7\"]);\n"
    ));
    runbook(&["run", &unconfirmed, "-c", &seed])
        .run()
        .expect_code(3)
        .stderr_has("CONFIG SET is destructive")
        .stderr_has("confirm(");
    assert_eq!(config_get(&c, 1, "maxmemory-samples"), "5");
    let (_d4, confirmed) = script(&format!(
        "let c = cluster();\nconfirm(\"Go on?\");\n\
         c.command({port}, [\"CONFIG\", \"SET\", \"maxmemory-samples\", \"7\"]);\n"
    ));
    runbook(&["run", &confirmed, "-c", &seed, "--dry-run"]).run().expect_code(0).stdout_has("CONFIG SET");
    assert_eq!(config_get(&c, 1, "maxmemory-samples"), "5", "a dry run sends no write");
    let state = tempfile::tempdir().unwrap();
    runbook(&["run", &confirmed, "-c", &seed, "--yes"]).env("RUNBOOK_STATE_DIR", state.path()).run().expect_code(0);
    assert_eq!(config_get(&c, 1, "maxmemory-samples"), "7");
    // Journaled under its name, without its arguments.
    let journal = runbook(&["journal"]).env("RUNBOOK_STATE_DIR", state.path()).run();
    let name = journal.stdout.split_whitespace().find(|w| w.starts_with("test-")).map(str::to_string);
    let shown = runbook(&["journal", &name.unwrap_or_default()]).env("RUNBOOK_STATE_DIR", state.path()).run();
    shown.expect_code(0).stdout_has("command(").stdout_has("CONFIG SET");
    assert!(!shown.stdout.contains("maxmemory-samples"), "{}", shown.stdout);
}
