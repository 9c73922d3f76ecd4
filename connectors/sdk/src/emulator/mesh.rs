//! # The МЭШ platform, shared by the ЭПОС.Школа and «Моя школа» emulators
//!
//! Both systems run on the Moscow МЭШ platform (SOURCES.md, sections ЭПОС.Школа and «Моя
//! школа»): the same `core/api` staff lists, the same profiles of parents and pupils, the same
//! lost-session text, the same nginx in front. What is common is here; each emulator
//! configures its hosts, paths, credentials and the differences (error body shape, date
//! formats, which family endpoints exist).

use axum::http::header::CONTENT_TYPE;
use axum::http::{HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use chrono::NaiveTime;

use super::{http_date, json_status};
use crate::synth::{World, FIRST_ID};

/// The platform's lost-session message (SOURCES.md, ЭПОС.Школа «Refused token» and «Моя
/// школа» «Expiry»), written here from the evidence, not taken from a connector.
pub const SESSION_ENDED: &str = "Предыдущая сессия работы в ЭЖД завершена. Войдите в ЭЖД заново";

/// The id of the staff profile for the school at `index` in the world (ids just below the
/// world's first id).
pub fn profile_id(index: usize) -> u64 {
    FIRST_ID - 100 - index as u64
}

/// The id of the made-up previous academic year (`current_year: false`).
pub const PREVIOUS_YEAR_ID: u64 = FIRST_ID - 200;

/// Whether `p` is the staff profile of one of the world's schools.
pub fn is_staff_profile(world: &World, p: &str) -> bool {
    (0..world.schools.len()).any(|i| profile_id(i).to_string() == p)
}

/// A family account: the token of a parent's or a pupil's profile (the access every public
/// client has, SOURCES.md).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FamilyAccount {
    /// A parent's profile (`type: "parent"`, profile id = the guardian's person id): sees
    /// the guardian's children.
    Parent { guardian: u64 },
    /// A pupil's profile (`type: "student"`, profile id = the pupil's id, which is the
    /// `student_profile_id`): sees the pupil.
    Pupil { student: u64 },
}

impl FamilyAccount {
    /// The profile id the session gives this account.
    pub fn profile_id(self) -> u64 {
        match self {
            FamilyAccount::Parent { guardian } => guardian,
            FamilyAccount::Pupil { student } => student,
        }
    }
}

/// Who a request is made by, as the gate resolved its token (handed to the handlers as a
/// request extension).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Viewer {
    /// The staff token: every school of the world (assumption: a staff profile reads a
    /// whole school).
    Staff,
    /// A family token: only these pupils (the children the profile sees).
    Family { account: FamilyAccount, children: Vec<u64> },
}

impl Viewer {
    /// The viewer of a family account (its children from the world's guardianships), or of
    /// the staff token (`None`).
    pub fn of(world: &World, account: Option<FamilyAccount>) -> Viewer {
        let Some(account) = account else { return Viewer::Staff };
        let children = match account {
            FamilyAccount::Pupil { student } => vec![student],
            FamilyAccount::Parent { guardian } => {
                let mut c: Vec<u64> = world
                    .schools
                    .iter()
                    .flat_map(|s| s.guardianships.iter().filter(|(g, _)| *g == guardian).map(|(_, st)| *st))
                    .collect();
                c.sort_unstable();
                c.dedup();
                c
            }
        };
        Viewer::Family { account, children }
    }

    /// Whether the viewer may read pupil `student`'s data.
    pub fn sees(&self, student: u64) -> bool {
        match self {
            Viewer::Staff => true,
            Viewer::Family { children, .. } => children.contains(&student),
        }
    }
}

/// The shape of the platform's JSON error bodies.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ErrorShape {
    /// `{"type": …, "description": …, "details": null}`
    #[default]
    TypeDescription,
    /// `{"code": N, "message": …}`
    CodeMessage,
}

/// A JSON error answer in `shape` (`kind` is the `type` of the first shape).
pub fn error(shape: ErrorShape, status: StatusCode, kind: &str, message: &str) -> Response {
    let body = match shape {
        ErrorShape::TypeDescription => serde_json::json!({ "type": kind, "description": message, "details": null }),
        ErrorShape::CodeMessage => serde_json::json!({ "code": status.as_u16(), "message": message }),
    };
    json_status(status, &body)
}

/// The lost-session answer with `status`.
pub fn session_ended(shape: ErrorShape, status: StatusCode) -> Response {
    error(shape, status, "authorization", SESSION_ENDED)
}

/// The platform's nginx page for a 502.
pub fn html_502() -> Response {
    const PAGE: &str = "<!DOCTYPE html>\n<html lang=\"ru\">\n<head><meta charset=\"utf-8\">\
<title>502 Bad Gateway</title></head>\n<body>\n<center><h1>502 Bad Gateway</h1></center>\n\
<hr><center>nginx</center>\n</body>\n</html>\n";
    (StatusCode::BAD_GATEWAY, [(CONTENT_TYPE, "text/html; charset=utf-8")], PAGE).into_response()
}

/// The emulators' clock: the world's today at 12:00 UTC.
pub fn noon_date(world: &World) -> HeaderValue {
    http_date(world.today.and_time(NaiveTime::from_hms_opt(12, 0, 0).expect("noon")))
}
