//! The Windows service entry point: `cms.exe --config FILE service`, started by the
//! service control manager (SCM), never by hand.
//!
//! Owns the SCM glue only: registering the control handler, reporting state, mapping
//! Stop and Shutdown to the one shutdown future that [`crate::collect::run`] takes,
//! logging to a file (a service has no console) and setting the service's own
//! failure/restart actions (the MSI is built with wixl, which has no `ServiceConfig`
//! element, so the service configures them itself at each start).
//! Not responsible for installing or removing the service: the MSI does that
//! (`packaging/wix/cms.wxs`, `ServiceInstall` and `ServiceControl`).

use crate::config::Config;
use anyhow::Context;
use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, OnceLock};
use std::time::Duration;
use windows_service::service::{
    ServiceAccess, ServiceAction, ServiceActionType, ServiceControl, ServiceControlAccept,
    ServiceExitCode, ServiceFailureActions, ServiceFailureResetPeriod, ServiceState, ServiceStatus,
    ServiceType,
};
use windows_service::service_control_handler::{self, ServiceControlHandlerResult};
use windows_service::service_manager::{ServiceManager, ServiceManagerAccess};
use windows_service::{define_windows_service, service_dispatcher};

/// The service name the MSI registers (`ServiceInstall/@Name`); the SCM dispatches by it.
pub const SERVICE_NAME: &str = "cms";

/// Log files beyond this size are rotated to `cms.log.1` when the service starts.
const LOG_ROTATE_BYTES: u64 = 10 * 1024 * 1024;

/// How long the SCM should wait for a stop: the collector's grace period plus margin.
const STOP_WAIT_HINT: Duration = Duration::from_secs(crate::collect::SHUTDOWN_GRACE.as_secs() + 5);

/// The `--config` argument, handed from [`run`] to the service main, which the SCM calls
/// on another thread with only the arguments of `StartService` (usually none).
static CONFIG_PATH: OnceLock<Option<PathBuf>> = OnceLock::new();

define_windows_service!(ffi_service_main, service_main);

/// Connects to the SCM and runs the service until it is stopped. Blocks.
///
/// # Errors
/// The process was not started by the SCM (run `sc start cms` or `net start cms`
/// instead), or the dispatcher could not start.
pub fn run(config_path: Option<PathBuf>) -> anyhow::Result<()> {
    let _ = CONFIG_PATH.set(config_path);
    service_dispatcher::start(SERVICE_NAME, ffi_service_main).context(
        "cannot connect to the service control manager: `cms service` is run by \
         Windows as the cms service; use `net start cms`, or `cms collect` in a console",
    )
}

/// Where the service writes `cms.log`: `logs` beside the configuration file (the MSI
/// passes `--config C:\ProgramData\cms\cms.toml`, so `C:\ProgramData\cms\logs`, the
/// folder it creates), else `%ProgramData%\cms\logs`. Taken from the configuration's
/// path rather than `%ProgramData%` because a service's environment need not match the
/// installer's (under Wine it points `ProgramData` at `C:\users\Public`).
pub fn log_dir(config_path: Option<&Path>) -> PathBuf {
    match config_path.and_then(Path::parent) {
        Some(dir) if !dir.as_os_str().is_empty() => dir.join("logs"),
        _ => std::env::var_os("ProgramData")
            .map(PathBuf::from)
            .unwrap_or_else(|| PathBuf::from(r"C:\ProgramData"))
            .join("cms")
            .join("logs"),
    }
}

fn service_main(_args: Vec<OsString>) {
    let config_path = CONFIG_PATH.get().cloned().flatten();
    if let Err(e) = init_file_logging(&log_dir(config_path.as_deref())) {
        // No console and no log file: the SCM still records the exit code.
        eprintln!("cms: {e:#}");
    }
    if let Err(e) = run_service(config_path.as_deref()) {
        tracing::error!("service failed: {e:#}");
    }
}

/// Appends to `dir\cms.log`, rotating it once when it has grown past [`LOG_ROTATE_BYTES`].
fn init_file_logging(dir: &Path) -> anyhow::Result<()> {
    std::fs::create_dir_all(dir)
        .with_context(|| format!("{}: cannot create log directory", dir.display()))?;
    let path = dir.join("cms.log");
    if std::fs::metadata(&path)
        .map(|m| m.len() > LOG_ROTATE_BYTES)
        .unwrap_or(false)
    {
        let _ = std::fs::rename(&path, dir.join("cms.log.1"));
    }
    let file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&path)
        .with_context(|| format!("{}: cannot open log file", path.display()))?;
    let filter = tracing_subscriber::EnvFilter::try_from_env("CMS_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(Mutex::new(file))
        .with_ansi(false)
        .with_target(false)
        .try_init()
        .map_err(|e| anyhow::anyhow!("cannot install the logger: {e}"))?;
    Ok(())
}

fn status(
    state: ServiceState,
    accept: ServiceControlAccept,
    exit: u32,
    wait: Duration,
) -> ServiceStatus {
    ServiceStatus {
        service_type: ServiceType::OWN_PROCESS,
        current_state: state,
        controls_accepted: accept,
        exit_code: if exit == 0 {
            ServiceExitCode::Win32(0)
        } else {
            ServiceExitCode::ServiceSpecific(exit)
        },
        checkpoint: 0,
        wait_hint: wait,
        process_id: None,
    }
}

fn run_service(config_path: Option<&Path>) -> anyhow::Result<()> {
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let stop_tx = Mutex::new(Some(stop_tx));
    let handler = move |event| match event {
        ServiceControl::Stop | ServiceControl::Shutdown | ServiceControl::Preshutdown => {
            if let Some(tx) = stop_tx.lock().ok().and_then(|mut g| g.take()) {
                tracing::info!(?event, "stop requested by the service control manager");
                let _ = tx.send(());
            }
            ServiceControlHandlerResult::NoError
        }
        ServiceControl::Interrogate => ServiceControlHandlerResult::NoError,
        _ => ServiceControlHandlerResult::NotImplemented,
    };
    let handle = service_control_handler::register(SERVICE_NAME, handler)
        .context("cannot register the service control handler")?;
    handle.set_service_status(status(
        ServiceState::StartPending,
        ServiceControlAccept::empty(),
        0,
        Duration::from_secs(30),
    ))?;
    if let Err(e) = set_failure_actions() {
        // Wine and locked-down hosts may refuse; the service still runs.
        tracing::warn!("cannot set the service's restart-on-failure actions: {e:#}");
    }

    let result = (|| -> anyhow::Result<()> {
        let cfg = Config::load(config_path)?;
        tracing::info!(config = %cfg.origin(), data = %cfg.data_dir.display(), server = %cfg.server_id, "cms service starting");
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .context("cannot start the async runtime")?;
        let ready_handle = handle;
        rt.block_on(crate::collect::run(
            cfg,
            async move {
                // A dropped sender (handler gone) also means stop.
                let _ = stop_rx.await;
                let _ = handle.set_service_status(status(
                    ServiceState::StopPending,
                    ServiceControlAccept::empty(),
                    0,
                    STOP_WAIT_HINT,
                ));
            },
            move || {
                let _ = ready_handle.set_service_status(status(
                    ServiceState::Running,
                    ServiceControlAccept::STOP | ServiceControlAccept::SHUTDOWN,
                    0,
                    Duration::default(),
                ));
                tracing::info!("service running");
            },
        ))
    })();

    // A non-zero service-specific exit code makes the SCM apply the failure actions.
    let code = match &result {
        Ok(()) => {
            tracing::info!("stopped");
            0
        }
        Err(e) => {
            tracing::error!("{e:#}");
            1
        }
    };
    handle.set_service_status(status(
        ServiceState::Stopped,
        ServiceControlAccept::empty(),
        code,
        Duration::default(),
    ))?;
    result
}

/// Restart after 5 s, 10 s, then 30 s; the failure count resets after a day without one.
fn set_failure_actions() -> anyhow::Result<()> {
    let manager = ServiceManager::local_computer(None::<&str>, ServiceManagerAccess::CONNECT)?;
    let service = manager.open_service(SERVICE_NAME, ServiceAccess::CHANGE_CONFIG)?;
    let restart = |secs| ServiceAction {
        action_type: ServiceActionType::Restart,
        delay: Duration::from_secs(secs),
    };
    service
        .update_failure_actions(ServiceFailureActions {
            reset_period: ServiceFailureResetPeriod::After(Duration::from_secs(86_400)),
            reboot_msg: None,
            command: None,
            actions: Some(vec![restart(5), restart(10), restart(30)]),
        })
        .context("SERVICE_CONFIG_FAILURE_ACTIONS")?;
    // Also when the service reports Stopped with an error, not only when it crashes.
    service
        .set_failure_actions_on_non_crash_failures(true)
        .context("SERVICE_CONFIG_FAILURE_ACTIONS_FLAG")?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn logs_live_beside_the_configuration() {
        assert_eq!(
            log_dir(Some(Path::new(r"C:\ProgramData\cms\cms.toml"))),
            PathBuf::from(r"C:\ProgramData\cms\logs")
        );
        // No --config, or a bare file name: the machine-wide default.
        assert!(log_dir(None).ends_with(r"cms\logs"), "{:?}", log_dir(None));
        assert!(log_dir(Some(Path::new("cms.toml"))).ends_with(r"cms\logs"));
    }
}
