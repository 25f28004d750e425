{# Generic tests: each returns the rows that fail. #}

{% test unique_combination_of_columns(model, combination_of_columns, quote_columns=false) -%}
  {%- set cols = [] -%}
  {%- for c in combination_of_columns -%}{%- do cols.append(adapter.quote(c) if quote_columns else c) -%}{%- endfor -%}
  select {{ cols | join(', ') }}, count(*) as n_records
  from {{ model }}
  group by {{ cols | join(', ') }}
  having count(*) > 1
{%- endtest %}

{% test expression_is_true(model, expression, column_name=None) -%}
  select * from {{ model }}
  where not ({% if column_name %}{{ column_name }} {% endif %}{{ expression }})
{%- endtest %}

{% test accepted_range(model, column_name, min_value=none, max_value=none, inclusive=true) -%}
  select * from {{ model }}
  where {{ column_name }} is not null and (false
  {%- if min_value is not none %} or {{ column_name }} {{ '<' if inclusive else '<=' }} {{ min_value }}{% endif -%}
  {%- if max_value is not none %} or {{ column_name }} {{ '>' if inclusive else '>=' }} {{ max_value }}{% endif -%}
  )
{%- endtest %}

{% test not_null_proportion(model, at_least, at_most=1.0, column_name=None) -%}
  select proportion from (
    select count({{ column_name }}) * 1.0 / nullif(count(*), 0) as proportion from {{ model }}
  ) as p
  where proportion < {{ at_least }} or proportion > {{ at_most }}
{%- endtest %}

{% test at_least_one(model, column_name) -%}
  select count({{ column_name }}) as filled from {{ model }} having count({{ column_name }}) = 0
{%- endtest %}

{% test not_constant(model, column_name) -%}
  select count(distinct {{ column_name }}) as distinct_values from {{ model }} having count(distinct {{ column_name }}) = 1
{%- endtest %}

{% test equal_rowcount(model, compare_model) -%}
  select a.n as model_rows, b.n as compare_rows
  from (select count(*) as n from {{ model }}) as a, (select count(*) as n from {{ compare_model }}) as b
  where a.n <> b.n
{%- endtest %}
