//! Cluster profiles: `--cluster NAME` from the profile file, `runbook profiles`, and the file's
//! refusals (readable by others, a literal password, an unknown name).

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use crate::support::cluster::free_port;
use crate::support::{TestCluster, runbook};

/// A user `operator` with a password; the default user stays open, for the harness.
const OPERATOR: &[&str] = &["--user", "operator", "on", ">opsecret", "~*", "&*", "+@all"];

/// Writes `text` as a profile file with `mode`; the file lives as long as the returned guard.
fn profile_file(text: &str, mode: u32) -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("config.toml");
    std::fs::write(&path, text).unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode)).unwrap();
    (dir, path)
}

fn with_config(args: &[&str], path: &Path) -> crate::support::command::Runbook {
    runbook(args).env("RUNBOOK_CONFIG", path)
}

#[test]
fn a_profile_names_a_cluster_its_user_and_where_its_password_is() {
    let c = TestCluster::start_with(3, 0, OPERATOR);
    // The first seed answers nothing: the next one stands in for it.
    let text = format!(
        "[clusters.prod]\nseeds = [\"127.0.0.1:{}\", \"{}\"]\nuser = \"operator\"\npassword_env = \"PROFILE_TEST_PASS\"\n\n\
         [clusters.byscript]\nseeds = [\"{}\"]\nuser = \"operator\"\npassword_command = \"echo opsecret\"\n",
        free_port(),
        c.seed(),
        c.nodes[1].addr()
    );
    let (_dir, path) = profile_file(&text, 0o600);
    // The profile's user wins over RUNBOOK_USER from the environment.
    let out = with_config(&["check", "-c", "prod"], &path)
        .env("PROFILE_TEST_PASS", "opsecret")
        .env("RUNBOOK_USER", "nobody")
        .run();
    out.expect_code(0);
    assert!(!out.stdout.contains("opsecret") && !out.stderr.contains("opsecret"), "the password never shows");
    with_config(&["check"], &path)
        .env("RUNBOOK_CLUSTER", "byscript")
        .run()
        .expect_code(0)
        .stdout_has(&c.nodes[1].addr());
    // A runbook's cluster() reaches the profile's cluster the same way.
    let out =
        with_config(&["run", "rebalance", "-c", "prod", "--dry-run"], &path).env("PROFILE_TEST_PASS", "opsecret").run();
    out.expect_code(0).stderr_has(&format!("dry run: reading {}", c.seed()));
    assert!(!out.stdout.contains("opsecret") && !out.stderr.contains("opsecret"), "the password never shows");
    // The password really is the one the profile names.
    let out = with_config(&["check", "-c", "prod"], &path).env("PROFILE_TEST_PASS", "wrong").run();
    out.expect_code(4).stderr_has("authentication failed");
    with_config(&["check", "-c", "prod"], &path)
        .run()
        .expect_code(2)
        .stderr_has("profile `prod` takes its password from $PROFILE_TEST_PASS, which is not set");
    // A flag typed on the command line wins over the profile.
    with_config(&["check", "-c", "byscript", "--user", "nobody"], &path)
        .run()
        .expect_code(4)
        .stderr_has("authentication failed");
}

#[test]
fn profiles_lists_each_profile_and_where_its_password_comes_from() {
    let (_dir, path) = profile_file(
        "[clusters.prod]\nseeds = [\"10.0.0.5:6379\", \"10.0.0.6:6379\"]\nuser = \"ops\"\ntls = true\npassword_env = \"PROD_PASS\"\n\n\
         [clusters.staging]\nseeds = [\"10.1.0.5:6379\"]\npassword_command = \"pass show redis/staging\"\n",
        0o600,
    );
    let out = with_config(&["profiles"], &path).env("PROD_PASS", "s3cret").run();
    out.expect_code(0)
        .stdout_has(&format!("profiles in {}:", path.display()))
        .stdout_has("NAME     SEEDS                        USER  TLS  PASSWORD\n")
        .stdout_has("prod     10.0.0.5:6379,10.0.0.6:6379  ops   yes  $PROD_PASS\n")
        .stdout_has("staging  10.1.0.5:6379                -     no   command `pass show redis/staging`\n");
    assert!(!out.stdout.contains("s3cret"), "{}", out.stdout);
    let missing = path.with_file_name("none.toml");
    with_config(&["profiles"], &missing)
        .run()
        .expect_code(0)
        .stdout_has(&format!("no profiles: {} does not exist", missing.display()))
        .stdout_has("  [clusters.prod]\n  seeds = [");
}

#[test]
fn a_profile_file_others_may_read_is_refused() {
    let (_dir, path) = profile_file("[clusters.prod]\nseeds = [\"10.0.0.5:6379\"]\n", 0o644);
    for args in [&["profiles"][..], &["check", "-c", "prod"]] {
        with_config(args, &path)
            .run()
            .expect_code(2)
            .stderr_has(&format!("the profile file {} has mode 0644", path.display()))
            .stderr_has(&format!("chmod 600 {}", path.display()));
    }
    // An address never reads the file: it fails as before, on the address (nothing listens).
    with_config(&["check", "-c", &free_port().to_string()], &path).run().expect_code(4).stderr_has("cannot connect");
}

#[test]
fn a_password_written_in_the_file_is_refused() {
    let (_dir, path) = profile_file("[clusters.prod]\nseeds = [\"10.0.0.5:6379\"]\npassword = \"hunter2\"\n", 0o600);
    let out = with_config(&["check", "-c", "prod"], &path).run();
    out.expect_code(2)
        .stderr_has("profile `prod`: a password is never written in the file")
        .stderr_has("password_env = \"VAR\"")
        .stderr_has("password_command");
    assert!(!out.stderr.contains("hunter2"), "{}", out.stderr);
}

#[test]
fn an_unknown_profile_names_the_profiles_there_are() {
    let (_dir, path) = profile_file(
        "[clusters.prod]\nseeds = [\"10.0.0.5:6379\"]\n[clusters.staging]\nseeds = [\"10.1.0.5:6379\"]\n",
        0o600,
    );
    with_config(&["check", "-c", "prd"], &path)
        .run()
        .expect_code(2)
        .stderr_has("`prd` is not a node address, nor the name of a cluster profile")
        .stderr_has("the profiles in")
        .stderr_has("are: prod, staging");
    with_config(&["fix", "-c", "prd"], &path.with_file_name("none.toml"))
        .run()
        .expect_code(2)
        .stderr_has("has no profiles");
}
