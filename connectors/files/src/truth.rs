//! What of the synthetic world the default layout carries, for comparing a sync with the
//! ground truth. The default layout (and `flat-csv`) carry every kind the world makes:
//! guardians, guardianships and teaching loads too, which the APIs do not expose.

use ejgate_sdk::model::EntityKind;
use ejgate_sdk::synth::{Reach, SystemTruth};

/// The kinds the connector fills from the default layout.
pub const EXPOSED: [EntityKind; 17] = [
    EntityKind::Organization,
    EntityKind::AcademicYear,
    EntityKind::StudyPeriod,
    EntityKind::Holiday,
    EntityKind::Class,
    EntityKind::Group,
    EntityKind::Person,
    EntityKind::Guardianship,
    EntityKind::Enrollment,
    EntityKind::Subject,
    EntityKind::TeachingLoad,
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
    // The layouts have no column for a homework's files yet.
    (EntityKind::Homework, "attachments"),
    // The built-in layouts have no column for the time a period mark was set (a school's
    // mapping may name one: `entered_at` of `final_mark`).
    (EntityKind::FinalMark, "entered_at"),
];

/// What the connector exposes, in the shape the demo, the comparison and the acceptance kit read.
pub const TRUTH: SystemTruth = SystemTruth {
    exposed: &EXPOSED,
    not_exposed_fields: NOT_EXPOSED_FIELDS,
    to_the_minute_fields: &[],
    reach: Reach::All,
};
