"""ipywidgets/anywidget widgets: branch picker, product browser, run progress, lineage graph."""
