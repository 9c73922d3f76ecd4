//! What of the synthetic world the «Моя школа» API exposes, for comparing a sync with the
//! ground truth. Not exposed through the endpoints the connector reads (README.md):
//! guardians and guardianships, teaching loads, absence notices, acknowledgements,
//! consents (`agree_pers_data` exists, the world keeps none), user activity.

use ejgate_sdk::model::EntityKind;
use ejgate_sdk::synth::{Reach, SystemTruth};

/// The kinds the connector fills.
pub const EXPOSED: [EntityKind; 15] = [
    EntityKind::Organization,
    EntityKind::AcademicYear,
    EntityKind::StudyPeriod,
    EntityKind::Holiday,
    EntityKind::Class,
    EntityKind::Group,
    EntityKind::Person,
    EntityKind::Enrollment,
    EntityKind::Subject,
    EntityKind::Lesson,
    EntityKind::Homework,
    EntityKind::Work,
    EntityKind::Mark,
    EntityKind::FinalMark,
    EntityKind::Attendance,
];

/// Fields of exposed kinds that the system does not fill (README.md says why); a
/// comparison with another source leaves them out.
pub const NOT_EXPOSED_FIELDS: &[(EntityKind, &str)] = &[
    (EntityKind::Mark, "entered_by"),
    (EntityKind::Attendance, "comment"),
    (EntityKind::Attendance, "entered_at"),
    // Events carry the topic (`lesson_theme`); no client shows a section field.
    (EntityKind::Lesson, "section"),
    // Homework entries carry `attachments[]`, but no client shows the shape of an element.
    (EntityKind::Homework, "attachments"),
    // A pupil's subject marks give a period mark without the time it was set.
    (EntityKind::FinalMark, "entered_at"),
];

/// What the connector exposes, in the shape the demo, the comparison and the acceptance kit read.
pub const TRUTH: SystemTruth = SystemTruth {
    exposed: &EXPOSED,
    not_exposed_fields: NOT_EXPOSED_FIELDS,
    to_the_minute_fields: &[],
    reach: Reach::AllButGuardians,
};
