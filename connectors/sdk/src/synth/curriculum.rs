//! The curriculum of a Russian school (федеральный учебный план for a five-day week,
//! ФОП НОО/ООО/СОО 2023, universal profile in 10–11): subjects, hours per week per grade,
//! knowledge areas, which teacher department teaches what, lesson topics and homework.

use rand::seq::IndexedRandom;
use rand::RngExt;
use rand_chacha::ChaCha8Rng;

/// A subject of the curriculum (plus the ГПД and the extracurricular course).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(super) enum Subj {
    Russian,
    LitReading,
    Literature,
    English,
    Math,
    Algebra,
    AlgebraAnalysis,
    Geometry,
    ProbStat,
    Informatics,
    World,
    History,
    Social,
    Geography,
    Biology,
    Physics,
    Chemistry,
    Orkse,
    Music,
    Art,
    Technology,
    Pe,
    Obzr,
    AfterSchool,
    Chess,
}

/// The departments teachers belong to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(super) enum Dept {
    Rus,
    Math,
    Inf,
    Eng,
    Hist,
    Geo,
    Bio,
    Phys,
    Art,
    Tech,
    Pe,
}

pub(super) const DEPTS: [Dept; 11] = [
    Dept::Rus,
    Dept::Math,
    Dept::Inf,
    Dept::Eng,
    Dept::Hist,
    Dept::Geo,
    Dept::Bio,
    Dept::Phys,
    Dept::Art,
    Dept::Tech,
    Dept::Pe,
];

/// A small department is merged into its partner (the partner's teachers take its hours).
pub(super) const MERGES: [(Dept, Dept); 6] = [
    (Dept::Inf, Dept::Math),
    (Dept::Geo, Dept::Bio),
    (Dept::Phys, Dept::Math),
    (Dept::Art, Dept::Tech),
    (Dept::Tech, Dept::Art),
    (Dept::Hist, Dept::Rus),
];

/// Every subject, in the order the school's subject list shows them.
pub(super) const ALL: [Subj; 25] = [
    Subj::Russian,
    Subj::LitReading,
    Subj::Literature,
    Subj::English,
    Subj::Math,
    Subj::Algebra,
    Subj::AlgebraAnalysis,
    Subj::Geometry,
    Subj::ProbStat,
    Subj::Informatics,
    Subj::World,
    Subj::History,
    Subj::Social,
    Subj::Geography,
    Subj::Biology,
    Subj::Physics,
    Subj::Chemistry,
    Subj::Orkse,
    Subj::Music,
    Subj::Art,
    Subj::Technology,
    Subj::Pe,
    Subj::Obzr,
    Subj::AfterSchool,
    Subj::Chess,
];

impl Subj {
    pub(super) fn name(self) -> &'static str {
        match self {
            Subj::Russian => "Русский язык",
            Subj::LitReading => "Литературное чтение",
            Subj::Literature => "Литература",
            Subj::English => "Иностранный язык (английский)",
            Subj::Math => "Математика",
            Subj::Algebra => "Алгебра",
            Subj::AlgebraAnalysis => "Алгебра и начала математического анализа",
            Subj::Geometry => "Геометрия",
            Subj::ProbStat => "Вероятность и статистика",
            Subj::Informatics => "Информатика",
            Subj::World => "Окружающий мир",
            Subj::History => "История",
            Subj::Social => "Обществознание",
            Subj::Geography => "География",
            Subj::Biology => "Биология",
            Subj::Physics => "Физика",
            Subj::Chemistry => "Химия",
            Subj::Orkse => "Основы религиозных культур и светской этики",
            Subj::Music => "Музыка",
            Subj::Art => "Изобразительное искусство",
            Subj::Technology => "Труд (технология)",
            Subj::Pe => "Физическая культура",
            Subj::Obzr => "Основы безопасности и защиты Родины",
            Subj::AfterSchool => "Группа продлённого дня",
            Subj::Chess => "Шахматы",
        }
    }

    pub(super) fn from_name(name: &str) -> Option<Subj> {
        ALL.into_iter().find(|s| s.name() == name)
    }

    /// Предметная область
    pub(super) fn knowledge_area(self) -> &'static str {
        match self {
            Subj::Russian | Subj::LitReading | Subj::Literature | Subj::English => "Филология",
            Subj::Math
            | Subj::Algebra
            | Subj::AlgebraAnalysis
            | Subj::Geometry
            | Subj::ProbStat
            | Subj::Informatics => "Математика и информатика",
            Subj::World => "Обществознание и естествознание (Окружающий мир)",
            Subj::History | Subj::Social | Subj::Geography => "Общественно-научные предметы",
            Subj::Biology | Subj::Physics | Subj::Chemistry => "Естественно-научные предметы",
            Subj::Orkse => "Основы религиозных культур и светской этики",
            Subj::Music | Subj::Art => "Искусство",
            Subj::Technology => "Технология",
            Subj::Pe | Subj::Obzr => "Физическая культура и основы безопасности и защиты Родины",
            Subj::AfterSchool | Subj::Chess => "Внеурочная деятельность",
        }
    }

    /// Hours per week in grade 1–11 (0: not taught).
    pub(super) fn hours(self, grade: u8) -> u8 {
        let table: [u8; 11] = match self {
            //                      1  2  3  4  5  6  7  8  9 10 11
            Subj::Russian => [5, 5, 5, 5, 5, 6, 4, 3, 3, 2, 2],
            Subj::LitReading => [4, 4, 4, 3, 0, 0, 0, 0, 0, 0, 0],
            Subj::Literature => [0, 0, 0, 0, 3, 3, 2, 2, 3, 3, 3],
            Subj::English => [0, 2, 2, 2, 3, 3, 3, 3, 3, 3, 3],
            Subj::Math => [4, 4, 4, 4, 5, 5, 0, 0, 0, 0, 0],
            Subj::Algebra => [0, 0, 0, 0, 0, 0, 3, 3, 3, 0, 0],
            Subj::AlgebraAnalysis => [0, 0, 0, 0, 0, 0, 0, 0, 0, 3, 3],
            Subj::Geometry => [0, 0, 0, 0, 0, 0, 2, 2, 2, 2, 2],
            Subj::ProbStat => [0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 1],
            Subj::Informatics => [0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 1],
            Subj::World => [2, 2, 2, 2, 0, 0, 0, 0, 0, 0, 0],
            Subj::History => [0, 0, 0, 0, 2, 2, 2, 2, 2, 2, 2],
            Subj::Social => [0, 0, 0, 0, 0, 1, 1, 1, 1, 2, 2],
            Subj::Geography => [0, 0, 0, 0, 1, 1, 2, 2, 2, 1, 1],
            Subj::Biology => [0, 0, 0, 0, 1, 1, 1, 2, 2, 1, 1],
            Subj::Physics => [0, 0, 0, 0, 0, 0, 2, 2, 3, 2, 2],
            Subj::Chemistry => [0, 0, 0, 0, 0, 0, 0, 2, 2, 1, 1],
            Subj::Orkse => [0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0],
            Subj::Music => [1, 1, 1, 1, 1, 1, 1, 1, 0, 0, 0],
            Subj::Art => [1, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0],
            Subj::Technology => [1, 1, 1, 1, 2, 2, 2, 1, 1, 0, 0],
            Subj::Pe => [2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2],
            Subj::Obzr => [0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1],
            Subj::AfterSchool | Subj::Chess => [0; 11],
        };
        table[(grade.clamp(1, 11) - 1) as usize]
    }

    /// Split into two subgroups in this grade, each with its own teacher.
    pub(super) fn split(self, grade: u8) -> bool {
        match self {
            Subj::English => grade >= 2,
            Subj::Informatics => grade >= 7,
            _ => false,
        }
    }

    /// Who teaches the subject in `grade`; `None`: the primary class teacher.
    pub(super) fn dept(self, grade: u8) -> Option<Dept> {
        let primary = grade <= 4;
        match self {
            Subj::English => Some(Dept::Eng),
            Subj::Music => Some(Dept::Art),
            Subj::Pe | Subj::Obzr => Some(Dept::Pe),
            _ if primary => None,
            Subj::Russian | Subj::Literature | Subj::LitReading => Some(Dept::Rus),
            Subj::Math | Subj::Algebra | Subj::AlgebraAnalysis | Subj::Geometry | Subj::ProbStat => Some(Dept::Math),
            Subj::Informatics => Some(Dept::Inf),
            Subj::History | Subj::Social | Subj::World | Subj::Orkse => Some(Dept::Hist),
            Subj::Geography => Some(Dept::Geo),
            Subj::Biology | Subj::Chemistry => Some(Dept::Bio),
            Subj::Physics => Some(Dept::Phys),
            Subj::Art => Some(Dept::Art),
            Subj::Technology => Some(Dept::Tech),
            Subj::AfterSchool | Subj::Chess => None,
        }
    }

    /// Subjects that get marks (not the ГПД, not extracurricular courses).
    pub(super) fn graded(self) -> bool {
        !matches!(self, Subj::AfterSchool | Subj::Chess)
    }

    /// The chance a lesson of the subject sets homework (grades 2–11).
    pub(super) fn homework_chance(self) -> f64 {
        match self {
            Subj::Pe => 0.05,
            Subj::Music | Subj::Art | Subj::Technology => 0.15,
            Subj::Obzr | Subj::Orkse => 0.45,
            Subj::ProbStat | Subj::Informatics => 0.7,
            Subj::AfterSchool | Subj::Chess => 0.0,
            _ => 0.88,
        }
    }

    /// The chances of a lesson having an extra work besides the default one:
    /// (code, chance) in the order they are tried.
    pub(super) fn work_chances(self) -> &'static [(&'static str, f64)] {
        match self {
            Subj::Russian | Subj::Math | Subj::Algebra | Subj::AlgebraAnalysis => &[
                ("control", 0.045),
                ("internal_control", 0.01),
                ("written", 0.05),
                ("test", 0.03),
                ("independent", 0.06),
            ],
            Subj::Geometry | Subj::ProbStat => &[("control", 0.045), ("test", 0.03), ("independent", 0.06)],
            Subj::Literature | Subj::LitReading => &[("control", 0.02), ("written", 0.06), ("test", 0.04)],
            Subj::English => &[
                ("control", 0.035),
                ("internal_control", 0.005),
                ("written", 0.04),
                ("test", 0.05),
                ("independent", 0.03),
            ],
            Subj::Physics | Subj::Chemistry | Subj::Biology => &[
                ("control", 0.035),
                ("internal_control", 0.005),
                ("practical", 0.08),
                ("test", 0.05),
                ("independent", 0.03),
            ],
            Subj::Informatics => &[("control", 0.03), ("practical", 0.15), ("test", 0.05)],
            Subj::World | Subj::History | Subj::Social | Subj::Geography | Subj::Obzr | Subj::Orkse => {
                &[("control", 0.025), ("test", 0.06), ("written", 0.03)]
            }
            Subj::Music | Subj::Art | Subj::Technology | Subj::Pe => &[("practical", 0.06), ("test", 0.02)],
            Subj::AfterSchool | Subj::Chess => &[],
        }
    }

    /// How marks in the subject lean: art, music, labour and PE are marked kindly.
    pub(super) fn mark_bias(self) -> f64 {
        match self {
            Subj::Music | Subj::Art | Subj::Technology | Subj::Pe | Subj::Orkse => 0.6,
            Subj::Obzr | Subj::World => 0.3,
            Subj::Algebra | Subj::AlgebraAnalysis | Subj::Geometry | Subj::Physics | Subj::Chemistry => -0.15,
            _ => 0.0,
        }
    }

    /// Lesson topics in the order of the year's programme, for `grade`. A list shared by
    /// several grades is cut into overlapping parts, one per grade, so that 2nd and 4th
    /// graders do not study the same thing on the same day.
    pub(super) fn topics(self, grade: u8) -> &'static [&'static str] {
        let list = topics(self, grade);
        let (first, last) = match (self, grade) {
            (Subj::Pe | Subj::AfterSchool | Subj::Chess, _) => return list,
            (Subj::Russian | Subj::LitReading | Subj::World | Subj::Technology, 1..=4) => (1, 4),
            (Subj::English, 2..=4) => (2, 4),
            (Subj::English, 5..=9) => (5, 9),
            (Subj::Russian | Subj::English | Subj::Social | Subj::Geography, 10..=11) => (10, 11),
            (Subj::Technology, 5..=9) => (5, 9),
            (Subj::ProbStat | Subj::Informatics, _) => (7, 11),
            (Subj::Music, _) => (1, 8),
            (Subj::Art, _) => (1, 7),
            (Subj::Obzr, _) => (8, 11),
            _ => return list,
        };
        let grades = (last - first + 1) as usize;
        let len = list.len();
        let size = (len / grades).max(4).min(len);
        let start = ((grade.clamp(first, last) - first) as usize * len / grades).min(len - size);
        &list[start..start + size]
    }

    /// The wording of the second, third … lesson on the same topic.
    fn follow_ups(self) -> &'static [&'static str] {
        match self {
            Subj::Math | Subj::Algebra | Subj::AlgebraAnalysis | Subj::Geometry | Subj::ProbStat | Subj::Physics => {
                &["Решение задач", "Закрепление", "Обобщение и систематизация знаний"]
            }
            Subj::Literature | Subj::LitReading => &["Анализ произведения", "Развитие речи", "Обсуждение прочитанного"],
            Subj::Pe => &["Техника выполнения упражнений", "Учебная игра", "Развитие физических качеств"],
            Subj::English => &["Лексика", "Грамматика", "Чтение и аудирование", "Говорение"],
            Subj::Music | Subj::Art | Subj::Technology => &["Практическая работа", "Творческое задание"],
            Subj::AfterSchool => &[],
            Subj::Informatics => &["Практикум", "Закрепление"],
            _ => &["Закрепление", "Практикум", "Обобщение и систематизация знаний"],
        }
    }

    /// The topic of the `n`-th held lesson (from 0) of a unit that has `per_week` lessons of
    /// the subject; the topic list is spread over the 34 weeks of the year.
    /// Returns (the lesson's topic, the unit's theme).
    pub(super) fn lesson_topic(self, grade: u8, n: u32, per_week: u32) -> (String, &'static str) {
        let list = self.topics(grade);
        if self == Subj::AfterSchool {
            let t = list[n as usize % list.len()];
            return (t.to_string(), t);
        }
        let total = (per_week.max(1) * 34).max(list.len() as u32);
        let n = n % total;
        let idx = (n as usize * list.len()) / total as usize;
        let theme = list[idx];
        // The first lesson of the theme is the theme itself.
        let first = (idx * total as usize).div_ceil(list.len()) as u32;
        let k = n - first;
        let follow = self.follow_ups();
        if k == 0 || follow.is_empty() {
            (theme.to_string(), theme)
        } else {
            let f = follow[(k as usize - 1) % follow.len()];
            let sep = if theme.ends_with('.') { " " } else { ". " };
            (format!("{theme}{sep}{f}"), theme)
        }
    }

    /// A homework text for a lesson on `theme`.
    pub(super) fn homework(self, rng: &mut ChaCha8Rng, theme: &str) -> String {
        let templates: &[&str] = match self {
            Subj::Russian => &[
                "Упр. {n}, с. {p}",
                "Выучить правило на с. {p}; упр. {n}",
                "Упр. {n}, {n2}",
                "Словарные слова на с. {p}; упр. {n}",
            ],
            Subj::LitReading => &[
                "Выразительное чтение, с. {p}–{p2}",
                "Выучить стихотворение наизусть (с. {p})",
                "Пересказ текста на с. {p}–{p2}",
                "Прочитать с. {p}–{p2}, ответить на вопросы",
            ],
            Subj::Literature => &[
                "Прочитать с. {p}–{p2}, ответить на вопросы {k}–{k2}",
                "Выучить наизусть отрывок (с. {p})",
                "Письменно ответить на вопрос {k} (с. {p})",
                "Подготовить пересказ эпизода: {theme}",
            ],
            Subj::Math | Subj::Algebra | Subj::AlgebraAnalysis | Subj::Geometry => &[
                "№ {n}, {n2}",
                "№ {n}, {n2}, {n3}; повторить п. {par}",
                "П. {par}, № {n}, {n2}",
                "Решить задачи № {n}–{n3}",
            ],
            Subj::ProbStat => &["П. {par}, задачи {k}–{k2}", "П. {par}, ответить на вопросы"],
            Subj::Informatics => &[
                "§ {par}, вопросы {k}–{k2}",
                "§ {par}, задание {k} в тетради",
                "Написать программу к задаче на с. {p}",
            ],
            Subj::English => &[
                "SB упр. {k} с. {p}; WB с. {p3}",
                "Выучить слова на с. {p}",
                "Читать и переводить текст на с. {p}",
                "WB с. {p3}, упр. {k}, {k2}",
            ],
            Subj::World => &[
                "Учебник с. {p}–{p2}, ответить на вопросы",
                "Рабочая тетрадь с. {p3}",
                "Подготовить сообщение по теме «{theme}»",
            ],
            Subj::History | Subj::Social => &[
                "§ {par}, вопросы {k}–{k2}",
                "§ {par}, составить план параграфа",
                "§ {par}; подготовить сообщение по теме «{theme}»",
            ],
            Subj::Geography => &["§ {par}, вопросы {k}–{k2}", "§ {par}; контурная карта, с. {p3}"],
            Subj::Biology => &["§ {par}, вопросы {k}–{k2}", "§ {par}, заполнить таблицу в тетради"],
            Subj::Physics => &["§ {par}, упр. {k} (задачи 1–{k2})", "§ {par}, вопросы после параграфа"],
            Subj::Chemistry => &["§ {par}, упр. {k}, {k2}", "§ {par}, задача {k}"],
            Subj::Obzr | Subj::Orkse => &["§ {par}, ответить на вопросы", "Подготовить рассказ по теме «{theme}»"],
            Subj::Music => &["Выучить слова песни", "Послушать произведения по теме «{theme}»"],
            Subj::Art => &["Закончить рисунок", "Принести краски, кисти и альбом"],
            Subj::Technology => &["Доделать изделие", "Подготовить материалы к следующему уроку"],
            Subj::Pe => &["Комплекс утренней гимнастики", "Прыжки через скакалку: 3 подхода по 50"],
            Subj::AfterSchool | Subj::Chess => &["Повторить пройденное"],
        };
        let t = templates.choose(rng).expect("non-empty");
        let p = rng.random_range(5..200u32);
        let n = rng.random_range(10..600u32);
        let k = rng.random_range(1..8u32);
        let par = rng.random_range(1..45u32);
        t.replace("{p2}", &(p + rng.random_range(2..8u32)).to_string())
            .replace("{p3}", &rng.random_range(3..60u32).to_string())
            .replace("{p}", &p.to_string())
            .replace("{n2}", &(n + rng.random_range(1..4u32)).to_string())
            .replace("{n3}", &(n + rng.random_range(4..8u32)).to_string())
            .replace("{n}", &n.to_string())
            .replace("{k2}", &(k + rng.random_range(1..5u32)).to_string())
            .replace("{k}", &k.to_string())
            .replace("{par}", &par.to_string())
            .replace("{theme}", theme)
    }
}

fn topics(s: Subj, g: u8) -> &'static [&'static str] {
    match (s, g) {
        (Subj::Russian, 1..=4) => &[
            "Звуки и буквы",
            "Гласные и согласные звуки",
            "Слог. Ударение",
            "Перенос слов",
            "Правописание сочетаний жи–ши, ча–ща, чу–щу",
            "Заглавная буква в именах собственных",
            "Состав слова. Корень",
            "Однокоренные слова",
            "Приставка и суффикс",
            "Безударные гласные в корне слова",
            "Парные звонкие и глухие согласные",
            "Разделительный мягкий знак",
            "Имя существительное",
            "Имя прилагательное",
            "Глагол",
            "Предложение. Члены предложения",
            "Текст. Типы текстов",
        ],
        (Subj::Russian, 5) => &[
            "Повторение изученного в начальной школе",
            "Фонетика. Графика. Орфоэпия",
            "Морфемика. Орфография",
            "Лексикология",
            "Синтаксис и пунктуация",
            "Имя существительное",
            "Имя прилагательное",
            "Глагол",
        ],
        (Subj::Russian, 6) => &[
            "Лексика и фразеология",
            "Словообразование. Орфография",
            "Имя существительное",
            "Имя прилагательное",
            "Имя числительное",
            "Местоимение",
            "Глагол",
        ],
        (Subj::Russian, 7) => &[
            "Причастие и причастный оборот",
            "Деепричастие и деепричастный оборот",
            "Наречие",
            "Служебные части речи. Предлог",
            "Союз",
            "Частица",
            "Междометие",
        ],
        (Subj::Russian, 8) => &[
            "Словосочетание",
            "Простое предложение. Главные члены",
            "Второстепенные члены предложения",
            "Односоставные предложения",
            "Однородные члены предложения",
            "Обособленные члены предложения",
            "Обращения, вводные и вставные конструкции",
        ],
        (Subj::Russian, 9) => &[
            "Сложное предложение",
            "Сложносочинённое предложение",
            "Сложноподчинённое предложение",
            "Бессоюзное сложное предложение",
            "Сложные предложения с разными видами связи",
            "Прямая и косвенная речь",
            "Подготовка к ОГЭ",
        ],
        (Subj::Russian, _) => &[
            "Язык и речь. Культура речи",
            "Лексикология и фразеология",
            "Морфология и орфография",
            "Синтаксис и пунктуация",
            "Стилистика. Функциональные стили речи",
            "Текст. Информационная переработка текста",
            "Подготовка к ЕГЭ: сочинение",
        ],
        (Subj::LitReading, _) => &[
            "Устное народное творчество. Сказки",
            "Загадки, пословицы, поговорки",
            "А. С. Пушкин. Сказки",
            "Л. Н. Толстой. Рассказы для детей",
            "Стихи русских поэтов о природе",
            "И. А. Крылов. Басни",
            "К. И. Чуковский. Стихи",
            "Рассказы о животных",
            "Н. Н. Носов. Рассказы",
            "В. Ю. Драгунский. «Денискины рассказы»",
            "М. М. Пришвин. Рассказы о природе",
            "Г. Х. Андерсен. Сказки",
            "Произведения о Родине",
        ],
        (Subj::Literature, 5) => &[
            "Мифы народов мира",
            "Русские народные сказки",
            "И. А. Крылов. Басни",
            "А. С. Пушкин. «Сказка о мёртвой царевне и о семи богатырях»",
            "М. Ю. Лермонтов. «Бородино»",
            "Н. В. Гоголь. «Ночь перед Рождеством»",
            "И. С. Тургенев. «Муму»",
            "Л. Н. Толстой. «Кавказский пленник»",
        ],
        (Subj::Literature, 6) => &[
            "Былины",
            "А. С. Пушкин. «Дубровский»",
            "М. Ю. Лермонтов. Лирика",
            "И. С. Тургенев. «Бежин луг»",
            "Н. А. Некрасов. «Железная дорога»",
            "А. П. Чехов. Рассказы",
            "А. П. Платонов. Рассказы",
        ],
        (Subj::Literature, 7) => &[
            "Древнерусская литература",
            "А. С. Пушкин. «Станционный смотритель»",
            "М. Ю. Лермонтов. «Песня про царя Ивана Васильевича…»",
            "Н. В. Гоголь. «Тарас Бульба»",
            "И. С. Тургенев. «Бирюк»",
            "М. Е. Салтыков-Щедрин. Сказки",
            "М. Горький. «Детство»",
        ],
        (Subj::Literature, 8) => &[
            "Д. И. Фонвизин. «Недоросль»",
            "А. С. Пушкин. «Капитанская дочка»",
            "М. Ю. Лермонтов. «Мцыри»",
            "Н. В. Гоголь. «Ревизор»",
            "И. С. Тургенев. «Ася»",
            "М. А. Булгаков. «Собачье сердце»",
            "М. А. Шолохов. «Судьба человека»",
        ],
        (Subj::Literature, 9) => &[
            "«Слово о полку Игореве»",
            "Литература XVIII века",
            "А. С. Грибоедов. «Горе от ума»",
            "А. С. Пушкин. «Евгений Онегин»",
            "М. Ю. Лермонтов. «Герой нашего времени»",
            "Н. В. Гоголь. «Мёртвые души»",
        ],
        (Subj::Literature, 10) => &[
            "А. Н. Островский. «Гроза»",
            "И. А. Гончаров. «Обломов»",
            "И. С. Тургенев. «Отцы и дети»",
            "Ф. И. Тютчев и А. А. Фет. Лирика",
            "Ф. М. Достоевский. «Преступление и наказание»",
            "Л. Н. Толстой. «Война и мир»",
            "А. П. Чехов. «Вишнёвый сад»",
        ],
        (Subj::Literature, _) => &[
            "И. А. Бунин. Рассказы",
            "М. Горький. «На дне»",
            "А. А. Блок. Лирика",
            "С. А. Есенин и В. В. Маяковский. Лирика",
            "М. А. Булгаков. «Мастер и Маргарита»",
            "М. А. Шолохов. «Тихий Дон»",
            "Литература о Великой Отечественной войне",
            "А. Т. Твардовский. Лирика",
        ],
        (Subj::English, 2..=4) => &[
            "Знакомство. Hello!",
            "Моя семья. My family",
            "Мои игрушки. My toys",
            "Животные. Animals",
            "Цвета и числа. Colours and numbers",
            "Моя школа. My school",
            "Еда. Food",
            "Мой дом. My home",
            "Времена года и погода. Seasons and weather",
            "Одежда. Clothes",
            "Мой день. My day",
            "Праздники. Holidays",
        ],
        (Subj::English, 5..=9) => &[
            "Школьная жизнь. School life",
            "Семья и друзья. Family and friends",
            "Свободное время. Free time",
            "Путешествия. Travelling",
            "Еда и здоровье. Food and health",
            "Спорт. Sports",
            "Покупки. Shopping",
            "Мир природы. The world of nature",
            "Великобритания и Россия. Great Britain and Russia",
            "Знаменитые люди. Famous people",
            "СМИ и технологии. Media and technology",
            "Выбор профессии. Choosing a career",
        ],
        (Subj::English, _) => &[
            "Взаимоотношения. Relationships",
            "Образование. Education",
            "Окружающая среда. Environment",
            "Наука и технологии. Science and technology",
            "Культура и традиции. Culture and traditions",
            "Работа и карьера. Work and career",
            "Глобальные проблемы. Global issues",
        ],
        (Subj::Math, 1) => &[
            "Сравнение предметов",
            "Числа от 1 до 10",
            "Сложение и вычитание в пределах 10",
            "Числа от 11 до 20",
            "Сложение и вычитание с переходом через десяток",
        ],
        (Subj::Math, 2) => &[
            "Числа от 1 до 100. Нумерация",
            "Сложение и вычитание в пределах 100",
            "Единицы длины",
            "Умножение",
            "Деление",
        ],
        (Subj::Math, 3) => &[
            "Таблица умножения",
            "Внетабличное умножение и деление",
            "Деление с остатком",
            "Числа от 1 до 1000",
            "Письменные приёмы вычислений",
        ],
        (Subj::Math, 4) => &[
            "Многозначные числа",
            "Величины",
            "Умножение и деление на однозначное число",
            "Скорость, время, расстояние",
            "Умножение и деление на двузначное число",
        ],
        (Subj::Math, 5) => &[
            "Натуральные числа",
            "Действия с натуральными числами",
            "Наглядная геометрия. Линии на плоскости",
            "Обыкновенные дроби",
            "Десятичные дроби",
            "Многоугольники",
        ],
        (Subj::Math, _) => &[
            "Натуральные числа. Делимость",
            "Дроби",
            "Положительные и отрицательные числа",
            "Буквенные выражения",
            "Пропорции и проценты",
            "Окружность и круг",
        ],
        (Subj::Algebra, 7) => &[
            "Выражения",
            "Степень с натуральным показателем",
            "Многочлены",
            "Формулы сокращённого умножения",
            "Линейная функция",
            "Системы линейных уравнений",
        ],
        (Subj::Algebra, 8) => {
            &["Рациональные дроби", "Квадратные корни", "Квадратные уравнения", "Неравенства", "Функции и их графики"]
        }
        (Subj::Algebra, _) => &[
            "Квадратичная функция",
            "Неравенства с одной переменной",
            "Системы уравнений",
            "Арифметическая прогрессия",
            "Геометрическая прогрессия",
            "Подготовка к ОГЭ",
        ],
        (Subj::AlgebraAnalysis, 10) => &[
            "Действительные числа",
            "Степенная функция",
            "Показательная функция",
            "Логарифмическая функция",
            "Тригонометрические формулы",
            "Тригонометрические уравнения",
        ],
        (Subj::AlgebraAnalysis, _) => &[
            "Производная",
            "Применение производной",
            "Первообразная и интеграл",
            "Уравнения и неравенства",
            "Подготовка к ЕГЭ",
        ],
        (Subj::Geometry, 7) => &[
            "Начальные геометрические сведения",
            "Треугольники",
            "Параллельные прямые",
            "Соотношения между сторонами и углами треугольника",
        ],
        (Subj::Geometry, 8) => &["Четырёхугольники", "Площадь", "Подобные треугольники", "Окружность"],
        (Subj::Geometry, 9) => &[
            "Векторы",
            "Метод координат",
            "Соотношения между сторонами и углами треугольника",
            "Длина окружности и площадь круга",
            "Движения",
        ],
        (Subj::Geometry, 10) => &[
            "Аксиомы стереометрии",
            "Параллельность прямых и плоскостей",
            "Перпендикулярность прямых и плоскостей",
            "Многогранники",
        ],
        (Subj::Geometry, _) => {
            &["Координаты и векторы в пространстве", "Цилиндр, конус, шар", "Объёмы тел", "Подготовка к ЕГЭ"]
        }
        (Subj::ProbStat, _) => &[
            "Представление данных",
            "Описательная статистика",
            "Случайная изменчивость",
            "Случайные события и вероятности",
            "Элементы комбинаторики",
            "Геометрическая вероятность",
            "Испытания Бернулли",
            "Случайные величины",
        ],
        (Subj::Informatics, _) => &[
            "Информация и информационные процессы",
            "Компьютер как универсальное устройство",
            "Файлы и файловая система",
            "Системы счисления",
            "Алгоритмы и исполнители",
            "Язык программирования Python",
            "Ветвления",
            "Циклы",
            "Обработка текстовой информации",
            "Электронные таблицы",
            "Компьютерные сети",
            "Моделирование",
        ],
        (Subj::World, _) => &[
            "Природа вокруг нас",
            "Живая и неживая природа",
            "Растения",
            "Животные",
            "Человек и его здоровье",
            "Правила безопасного поведения",
            "Наша Родина — Россия",
            "Город и село",
            "Вода и воздух",
            "Природные зоны России",
            "Страницы истории Отечества",
            "Родной край",
        ],
        (Subj::History, 5) => {
            &["Первобытность", "Древний Египет", "Древние цивилизации Месопотамии", "Древняя Греция", "Древний Рим"]
        }
        (Subj::History, 6) => &[
            "Раннее Средневековье",
            "Русь в IX – начале XII в.",
            "Русь в середине XII – начале XIII в.",
            "Русские земли в XIII–XIV вв.",
            "Формирование единого Русского государства",
        ],
        (Subj::History, 7) => {
            &["Великие географические открытия", "Россия в XVI веке", "Смутное время", "Россия в XVII веке"]
        }
        (Subj::History, 8) => &[
            "Эпоха Просвещения",
            "Россия в эпоху преобразований Петра I",
            "Эпоха дворцовых переворотов",
            "Россия при Екатерине II",
        ],
        (Subj::History, 9) => &[
            "Россия в первой четверти XIX в.",
            "Россия при Николае I",
            "Великие реформы",
            "Россия на рубеже XIX–XX вв.",
            "Введение в новейшую историю России",
        ],
        (Subj::History, 10) => &[
            "Россия в годы Первой мировой войны",
            "Великая российская революция",
            "СССР в 1920–1930-е гг.",
            "Великая Отечественная война 1941–1945 гг.",
        ],
        (Subj::History, _) => &[
            "СССР в 1945–1991 гг.",
            "Российская Федерация в 1990-е гг.",
            "Россия в XXI веке",
            "Мир во второй половине XX – начале XXI в.",
        ],
        (Subj::Social, 6) => &["Человек в социальном измерении", "Человек среди людей", "Общество, в котором мы живём"],
        (Subj::Social, 7) => &["Социальные нормы", "Человек в экономических отношениях", "Человек и природа"],
        (Subj::Social, 8) => &["Человек в экономике", "Человек в мире культуры", "Социальная сфера"],
        (Subj::Social, 9) => &["Политика", "Гражданин и государство", "Основы российского права"],
        (Subj::Social, _) => &["Человек и общество", "Экономика", "Социальные отношения", "Политика", "Право"],
        (Subj::Geography, 5) => &["Земля во Вселенной", "План и карта", "Литосфера"],
        (Subj::Geography, 6) => &["Гидросфера", "Атмосфера", "Биосфера"],
        (Subj::Geography, 7) => &["Материки и океаны", "Африка", "Южная Америка", "Евразия"],
        (Subj::Geography, 8) => {
            &["Географическое положение России", "Рельеф России", "Климат России", "Природные зоны России"]
        }
        (Subj::Geography, 9) => &["Население России", "Хозяйство России", "Регионы России"],
        (Subj::Geography, _) => &["Население мира", "Мировое хозяйство", "Регионы и страны мира"],
        (Subj::Biology, 5) => &["Биология — наука о живой природе", "Клетка", "Многообразие организмов"],
        (Subj::Biology, 6) => &["Растительный организм", "Жизнедеятельность растений"],
        (Subj::Biology, 7) => &["Систематика растений", "Бактерии и грибы", "Растительные сообщества"],
        (Subj::Biology, 8) => &["Животные: строение и жизнедеятельность", "Многообразие животных"],
        (Subj::Biology, 9) => &["Человек и его здоровье", "Нервная система", "Кровь и кровообращение", "Пищеварение"],
        (Subj::Biology, 10) => &["Клетка", "Обмен веществ", "Размножение и развитие организмов"],
        (Subj::Biology, _) => &["Генетика", "Эволюция", "Экология"],
        (Subj::Physics, 7) => &[
            "Физика и её роль в познании",
            "Строение вещества",
            "Движение и взаимодействие тел",
            "Давление твёрдых тел, жидкостей и газов",
            "Работа и мощность",
        ],
        (Subj::Physics, 8) => &["Тепловые явления", "Электрические явления", "Магнитные явления", "Световые явления"],
        (Subj::Physics, 9) => &[
            "Законы движения",
            "Механические колебания и волны",
            "Электромагнитное поле",
            "Строение атома и атомного ядра",
        ],
        (Subj::Physics, 10) => {
            &["Кинематика", "Динамика", "Законы сохранения", "Молекулярная физика", "Электростатика"]
        }
        (Subj::Physics, _) => {
            &["Магнитное поле", "Электромагнитная индукция", "Колебания и волны", "Оптика", "Квантовая физика"]
        }
        (Subj::Chemistry, 8) => &[
            "Первоначальные химические понятия",
            "Кислород. Водород",
            "Вода. Растворы",
            "Основные классы неорганических соединений",
            "Периодический закон Д. И. Менделеева",
        ],
        (Subj::Chemistry, 9) => &["Электролитическая диссоциация", "Неметаллы", "Металлы"],
        (Subj::Chemistry, 10) => {
            &["Углеводороды", "Кислородсодержащие органические соединения", "Азотсодержащие соединения"]
        }
        (Subj::Chemistry, _) => &["Строение вещества", "Химические реакции", "Неорганическая химия"],
        (Subj::Orkse, _) => &[
            "Россия — наша Родина",
            "Культура и мораль",
            "Добро и зло",
            "Дружба и взаимопомощь",
            "Семейные ценности",
            "Праздники народов России",
        ],
        (Subj::Music, _) => &[
            "Музыка вокруг нас",
            "Народная музыка",
            "Жанры музыки",
            "Русская классическая музыка",
            "Музыка в театре",
            "Музыка народов мира",
            "Современная музыкальная культура",
        ],
        (Subj::Art, _) => &[
            "Рисунок с натуры",
            "Живопись. Цвет",
            "Декоративно-прикладное искусство",
            "Народные промыслы",
            "Архитектура",
            "Портрет и пейзаж",
        ],
        (Subj::Technology, 1..=4) => &[
            "Работа с бумагой и картоном",
            "Работа с природными материалами",
            "Лепка из пластилина",
            "Работа с тканью",
            "Конструирование и моделирование",
        ],
        (Subj::Technology, _) => &[
            "Технологии обработки конструкционных материалов",
            "Технологии обработки пищевых продуктов",
            "Компьютерная графика и черчение",
            "Робототехника",
            "Проектная деятельность",
        ],
        (Subj::Pe, _) => &[
            "Лёгкая атлетика",
            "Спортивные игры: футбол",
            "Спортивные игры: баскетбол",
            "Гимнастика",
            "Лыжная подготовка",
            "Спортивные игры: волейбол",
            "Лёгкая атлетика: бег и прыжки",
        ],
        (Subj::Obzr, _) => &[
            "Безопасное поведение в быту",
            "Безопасность на транспорте",
            "Безопасность в общественных местах",
            "Безопасность в природной среде",
            "Первая помощь",
            "Противодействие экстремизму и терроризму",
            "Основы обороны государства",
        ],
        (Subj::AfterSchool, _) => &[
            "Прогулка. Подвижные игры на свежем воздухе",
            "Самоподготовка",
            "Час чтения",
            "Занятие по интересам: рисование",
            "Настольные игры",
            "Беседа о правилах поведения",
            "Конструирование",
            "Прогулка. Наблюдения за природой",
        ],
        (Subj::Chess, _) => &[
            "Шахматная доска и фигуры",
            "Ходы ладьи и слона",
            "Ход ферзя и короля",
            "Ход коня",
            "Ход пешки. Взятие на проходе",
            "Шах и мат",
            "Рокировка",
            "Дебют",
            "Эндшпиль",
            "Шахматный турнир",
        ],
    }
}
