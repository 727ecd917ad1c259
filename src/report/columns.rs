//! A column of a CSV file or a table, declared once as (name, value of a row), so a header
//! cannot drift from its values.

pub(crate) struct Column<'a, R> {
    pub(crate) name: String,
    value: Box<dyn Fn(&R) -> String + 'a>,
}

pub(crate) fn column<'a, R>(
    name: impl Into<String>,
    value: impl Fn(&R) -> String + 'a,
) -> Column<'a, R> {
    Column {
        name: name.into(),
        value: Box::new(value),
    }
}

impl<R> Column<'_, R> {
    pub(crate) fn value(&self, row: &R) -> String {
        (self.value)(row)
    }
}

/// The header's names, and each row's cells in the columns' order.
pub(crate) fn grid<'r, R: 'r>(
    columns: &[Column<'_, R>],
    rows: impl IntoIterator<Item = &'r R>,
) -> (Vec<String>, Vec<Vec<String>>) {
    let names = columns.iter().map(|c| c.name.clone()).collect();
    let cells = rows
        .into_iter()
        .map(|row| columns.iter().map(|c| c.value(row)).collect())
        .collect();
    (names, cells)
}
