//! What of the synthetic world the Dnevnik API exposes, for comparing a sync with the
//! ground truth. Not exposed through the endpoints the connector reads (README.md):
//! guardians and guardianships, teaching loads, absence notices, acknowledgements,
//! consents, user activity.

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
    (EntityKind::Class, "homeroom_teacher"),
    (EntityKind::Person, "birth_date"),
    (EntityKind::Enrollment, "from"),
    (EntityKind::Enrollment, "to"),
    (EntityKind::Mark, "entered_by"),
    (EntityKind::Mark, "subject"),
    // A mark is `{value, mood, …}`: no teacher's comment, no «точка» (SOURCES.md).
    (EntityKind::Mark, "comment"),
    (EntityKind::Mark, "is_point"),
    (EntityKind::Mark, "point_date"),
    // A lesson has its topic (`title`), not the section of the thematic plan.
    (EntityKind::Lesson, "section"),
];

/// What the connector exposes, in the shape the demo, the comparison and the acceptance kit read.
pub const TRUTH: SystemTruth = SystemTruth {
    exposed: &EXPOSED,
    not_exposed_fields: NOT_EXPOSED_FIELDS,
    to_the_minute_fields: &[],
    reach: Reach::AllButGuardians,
};
