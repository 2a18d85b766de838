//! Plain-text tables for people: a header and aligned columns, numbers to the right.

use std::io::{self, Write};

pub(crate) struct Table {
    header: Vec<&'static str>,
    rows: Vec<Vec<String>>,
}

impl Table {
    pub(crate) fn new(header: &[&'static str]) -> Self {
        Self {
            header: header.to_vec(),
            rows: Vec::new(),
        }
    }

    pub(crate) fn row(&mut self, cells: Vec<String>) {
        self.rows.push(cells);
    }

    pub(crate) fn write(&self, out: &mut dyn Write) -> io::Result<()> {
        let mut widths: Vec<usize> = self
            .header
            .iter()
            .map(|cell| cell.chars().count())
            .collect();
        for row in &self.rows {
            for (width, cell) in widths.iter_mut().zip(row) {
                *width = (*width).max(cell.chars().count());
            }
        }
        let numeric: Vec<bool> = (0..widths.len())
            .map(|column| {
                !self.rows.is_empty()
                    && self.rows.iter().all(|row| {
                        row.get(column)
                            .is_some_and(|cell| cell.parse::<f64>().is_ok())
                    })
            })
            .collect();
        let header: Vec<String> = self.header.iter().map(|cell| (*cell).to_owned()).collect();
        for row in std::iter::once(&header).chain(&self.rows) {
            let mut line = String::new();
            for (column, cell) in row.iter().enumerate() {
                let width = widths[column];
                if column > 0 {
                    line.push_str("  ");
                }
                if numeric[column] {
                    line.push_str(&format!("{cell:>width$}"));
                } else {
                    line.push_str(&format!("{cell:<width$}"));
                }
            }
            writeln!(out, "{}", line.trim_end())?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn columns_are_aligned_and_numbers_right() {
        let mut table = Table::new(&["NAME", "N"]);
        table.row(vec!["a".into(), "7".into()]);
        table.row(vec!["longer".into(), "12".into()]);
        let mut out = Vec::new();
        table.write(&mut out).expect("written");
        assert_eq!(
            String::from_utf8(out).expect("text"),
            "NAME     N\na        7\nlonger  12\n"
        );
    }
}
