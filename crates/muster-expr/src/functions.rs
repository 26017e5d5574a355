//! The catalog of functions: names as documented and how many arguments each takes.

macro_rules! catalog {
    ($($variant:ident $name:literal $min:literal ..= $max:expr,)*) => {
        /// A documented Entra expression function.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum Function {
            $(
                #[doc = concat!("`", $name, "`")]
                $variant,
            )*
        }

        impl Function {
            /// Every function, in alphabetical order of its name.
            pub const ALL: &'static [Function] = &[$(Function::$variant,)*];

            /// The documented spelling of the name.
            pub fn name(self) -> &'static str {
                match self { $(Function::$variant => $name,)* }
            }

            /// The fewest and most arguments (empty ones count).
            pub fn arity(self) -> (usize, usize) {
                match self { $(Function::$variant => ($min, $max),)* }
            }
        }
    };
}

catalog! {
    Append "Append" 2..=2,
    AppRoleAssignmentsComplex "AppRoleAssignmentsComplex" 1..=1,
    AssertiveAppRoleAssignmentsComplex "AssertiveAppRoleAssignmentsComplex" 1..=1,
    BitAnd "BitAnd" 2..=2,
    CBool "CBool" 1..=1,
    CDate "CDate" 1..=1,
    Coalesce "Coalesce" 1..=usize::MAX,
    ConvertToBase64 "ConvertToBase64" 1..=1,
    ConvertToUtf8Hex "ConvertToUTF8Hex" 1..=1,
    Count "Count" 1..=1,
    CStr "CStr" 1..=1,
    DateAdd "DateAdd" 3..=3,
    DateDiff "DateDiff" 3..=3,
    DateFromNum "DateFromNum" 1..=1,
    FormatDateTime "FormatDateTime" 4..=4,
    Guid "Guid" 0..=0,
    IgnoreFlowIfNullOrEmpty "IgnoreFlowIfNullOrEmpty" 1..=1,
    Iif "IIF" 3..=3,
    InStr "InStr" 2..=4,
    IsNull "IsNull" 1..=1,
    IsNullOrEmpty "IsNullOrEmpty" 1..=1,
    IsPresent "IsPresent" 1..=1,
    IsString "IsString" 1..=1,
    Item "Item" 2..=2,
    Join "Join" 1..=usize::MAX,
    Left "Left" 2..=2,
    Mid "Mid" 3..=3,
    NormalizeDiacritics "NormalizeDiacritics" 1..=1,
    Not "Not" 1..=1,
    Now "Now" 0..=0,
    NumFromDate "NumFromDate" 1..=1,
    PCase "PCase" 1..=2,
    RandomString "RandomString" 5..=6,
    Redact "Redact" 1..=1,
    RemoveDuplicates "RemoveDuplicates" 1..=1,
    Replace "Replace" 7..=7,
    SelectUniqueValue "SelectUniqueValue" 1..=usize::MAX,
    SingleAppRoleAssignment "SingleAppRoleAssignment" 1..=1,
    Split "Split" 2..=2,
    StripSpaces "StripSpaces" 1..=1,
    Switch "Switch" 2..=usize::MAX,
    ToLower "ToLower" 1..=2,
    ToUpper "ToUpper" 1..=2,
    Word "Word" 3..=3,
}

/// How a name written in an expression matched the catalog.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lookup {
    /// Spelled as documented.
    Exact(Function),
    /// Same letters, other casing (accepted with a warning).
    OtherCase(Function),
    /// Not a function.
    Unknown,
}

impl Function {
    /// Finds the function a name in an expression refers to.
    pub fn lookup(name: &str) -> Lookup {
        if let Some(function) = Self::ALL.iter().find(|f| f.name() == name) {
            return Lookup::Exact(*function);
        }
        match Self::ALL
            .iter()
            .find(|f| f.name().eq_ignore_ascii_case(name))
        {
            Some(function) => Lookup::OtherCase(*function),
            None => Lookup::Unknown,
        }
    }

    /// The closest documented name, for "did you mean" hints.
    pub fn closest(name: &str) -> Option<Function> {
        let lower = name.to_lowercase();
        Self::ALL
            .iter()
            .map(|f| (f, strsim::jaro_winkler(&lower, &f.name().to_lowercase())))
            .filter(|(_, score)| *score > 0.85)
            .max_by(|a, b| a.1.total_cmp(&b.1))
            .map(|(f, _)| *f)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lookup_and_hints() {
        assert_eq!(Function::lookup("IIF"), Lookup::Exact(Function::Iif));
        assert_eq!(
            Function::lookup("switch"),
            Lookup::OtherCase(Function::Switch)
        );
        assert_eq!(Function::lookup("Frobnicate"), Lookup::Unknown);
        assert_eq!(Function::closest("Coalese"), Some(Function::Coalesce));
        assert_eq!(Function::ALL.len(), 44);
    }
}
