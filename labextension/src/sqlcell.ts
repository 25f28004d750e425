import {
  JupyterFrontEnd,
  JupyterFrontEndPlugin
} from '@jupyterlab/application';
import {
  EditorExtensionRegistry,
  IEditorExtensionRegistry
} from '@jupyterlab/codemirror';
import { PostgreSQL, SQLDialect } from '@codemirror/lang-sql';
import { syntaxHighlighting } from '@codemirror/language';
import {
  Compartment,
  EditorState,
  Extension,
  Prec,
  RangeSetBuilder
} from '@codemirror/state';
import {
  Decoration,
  DecorationSet,
  EditorView,
  ViewPlugin,
  ViewUpdate
} from '@codemirror/view';
import { classHighlighter } from '@lezer/highlight';

/**
 * A code cell is SQL when its first line is the `%%rat sql` cell magic (or JupySQL's `%%sql`).
 */
export const SQL_MAGIC = /^\s*%%(?:rat\s+sql|sql)(?:\s|$)/;

export function isSqlSource(firstLine: string): boolean {
  return SQL_MAGIC.test(firstLine);
}

/**
 * DuckDB's SQL, on top of CodeMirror's PostgreSQL dialect (DuckDB follows PostgreSQL's syntax):
 * DuckDB's own statements and clauses, its type names and a few table functions.
 */
const DUCKDB_KEYWORDS =
  'anti asof attach columns describe detach exclude export import install ' +
  'load macro pivot pivot_longer pivot_wider positional pragma qualify replace ' +
  'sample semi summarize unpivot using tablesample recursive materialized ' +
  'struct map union list lambda try_cast';
const DUCKDB_TYPES =
  'hugeint uhugeint ubigint uinteger usmallint utinyint tinyint varint ' +
  'blob bitstring timestamp_s timestamp_ms timestamp_ns timestamptz ' +
  'varchar string double float decimal uuid json enum';
const DUCKDB_BUILTINS =
  'read_csv read_csv_auto read_parquet read_json read_json_auto iceberg_scan ' +
  'glob range generate_series unnest list_value struct_pack strftime strptime ' +
  'date_trunc date_part epoch epoch_ms now current_date today ' +
  'count sum avg min max arg_min arg_max median quantile string_agg list ' +
  'coalesce nullif round greatest least ref source this';

export const DuckDB: SQLDialect = SQLDialect.define({
  ...PostgreSQL.spec,
  keywords: `${PostgreSQL.spec.keywords ?? ''} ${DUCKDB_KEYWORDS}`,
  types: `${PostgreSQL.spec.types ?? ''} ${DUCKDB_TYPES}`,
  builtin: `${PostgreSQL.spec.builtin ?? ''} ${DUCKDB_BUILTINS}`
});

/**
 * The magic line (`%%rat sql --save gold.x`) is not SQL: style it apart (a decoration over line 1).
 */
const magicLine = ViewPlugin.fromClass(
  class {
    decorations: DecorationSet;

    constructor(view: EditorView) {
      this.decorations = this.build(view.state);
    }

    update(update: ViewUpdate): void {
      if (update.docChanged) {
        this.decorations = this.build(update.state);
      }
    }

    build(state: EditorState): DecorationSet {
      const builder = new RangeSetBuilder<Decoration>();
      const line = state.doc.line(1);
      if (isSqlSource(line.text)) {
        builder.add(
          line.from,
          line.from,
          Decoration.line({ class: 'jp-RatSql-magicLine' })
        );
        if (line.to > line.from) {
          builder.add(
            line.from,
            line.to,
            Decoration.mark({ class: 'jp-RatSql-magic' })
          );
        }
      }
      return builder.finish();
    }
  },
  { decorations: plugin => plugin.decorations }
);

/**
 * What a SQL cell gets: the DuckDB language (its parser only: completion stays the kernel's),
 * `tok-*` classes on its tokens beside the theme's colours, the magic-line style and a marker
 * attribute on the editor content.
 */
const SQL_ON: Extension = [
  DuckDB.language,
  syntaxHighlighting(classHighlighter),
  magicLine,
  EditorView.contentAttributes.of({ 'data-rat-language': 'sql' })
];

const sqlCompartment = new Compartment();

function wanted(state: EditorState): Extension {
  return isSqlSource(state.doc.line(1).text) ? SQL_ON : [];
}

function isOn(state: EditorState): boolean {
  return sqlCompartment.get(state) === SQL_ON;
}

/**
 * Switch the language as the first line changes (typing `%%rat sql`, or removing it).
 */
const follow = EditorState.transactionExtender.of(tr => {
  if (!tr.docChanged) {
    return null;
  }
  const sql = isSqlSource(tr.newDoc.line(1).text);
  if (sql === isOn(tr.startState)) {
    return null;
  }
  return { effects: sqlCompartment.reconfigure(sql ? SQL_ON : []) };
});

/**
 * The editor may be created before its text arrives (the shared model fills it): check once the
 * view exists, outside of its update cycle.
 */
const initial = ViewPlugin.fromClass(
  class {
    private _alive = true;

    constructor(view: EditorView) {
      queueMicrotask(() => {
        if (!this._alive) {
          return;
        }
        const sql = wanted(view.state) === SQL_ON;
        if (sql !== isOn(view.state)) {
          view.dispatch({
            effects: sqlCompartment.reconfigure(sql ? SQL_ON : [])
          });
        }
      });
    }

    destroy(): void {
      this._alive = false;
    }
  }
);

/**
 * The editor extension: highest precedence, so the SQL language wins over the cell's Python one
 * (CodeMirror uses the first language configured).
 */
export function sqlCellExtension(): Extension {
  return [
    Prec.highest(sqlCompartment.of([])),
    follow,
    initial
  ];
}

export const sqlCellPlugin: JupyterFrontEndPlugin<void> = {
  id: 'ratatouille-nb:sql-cells',
  description:
    'SQL highlighting (DuckDB keywords) in notebook cells starting with %%rat sql or %%sql.',
  autoStart: true,
  requires: [IEditorExtensionRegistry],
  activate: (app: JupyterFrontEnd, registry: IEditorExtensionRegistry) => {
    registry.addExtension({
      name: 'ratatouille-nb:sql-cells',
      // Notebook cells are inline editors; file editors keep their own language.
      factory: options =>
        options.inline
          ? EditorExtensionRegistry.createImmutableExtension(sqlCellExtension())
          : null
    });
  }
};
