// A small Markdown renderer for model and column descriptions, safe by construction: it builds DOM
// nodes and text nodes, never HTML strings, so a description cannot inject markup or script.
// Raw HTML in a description shows as text. Links keep only http(s): and mailto: targets.
//
// Blocks: paragraphs, headings (#…), bullet and numbered lists, > quotes, ``` code fences.
// Inline: `code`, **bold**, *italic* / _italic_, [text](url), bare https:// links.

const SAFE_URL = /^(https?:|mailto:)/i;

function el(tag, cls) {
  const node = document.createElement(tag);
  if (cls) node.className = cls;
  return node;
}

/** Inline markup of one paragraph's text into `parent`. */
function inline(text, parent) {
  const pattern = /(`+)([^`]+?)\1|\*\*([^*]+?)\*\*|__([^_]+?)__|\*([^*\s][^*]*?)\*|(?<![\w])_([^_\s][^_]*?)_(?![\w])|\[([^\]]+)\]\(([^)\s]+)\)|(https?:\/\/[^\s<>()]+[^\s<>().,;:!?'"])/g;
  let last = 0;
  for (const m of text.matchAll(pattern)) {
    if (m.index > last) parent.append(document.createTextNode(text.slice(last, m.index)));
    last = m.index + m[0].length;
    if (m[2] !== undefined) {
      const code = el("code");
      code.textContent = m[2];
      parent.append(code);
    } else if (m[3] !== undefined || m[4] !== undefined) {
      const strong = el("strong");
      inline(m[3] ?? m[4], strong);
      parent.append(strong);
    } else if (m[5] !== undefined || m[6] !== undefined) {
      const em = el("em");
      inline(m[5] ?? m[6], em);
      parent.append(em);
    } else if (m[7] !== undefined) {
      parent.append(link(m[8], m[7]));
    } else if (m[9] !== undefined) {
      parent.append(link(m[9], m[9]));
    }
  }
  if (last < text.length) parent.append(document.createTextNode(text.slice(last)));
}

function link(url, label) {
  if (!SAFE_URL.test(url)) {
    const span = el("span");
    inline(label, span);
    return span;
  }
  const a = el("a");
  a.href = url;
  a.target = "_blank";
  a.rel = "noopener noreferrer";
  inline(label, a);
  return a;
}

/** A DOM fragment (a <div class="rat-md">) for Markdown `source`. */
export function renderMarkdown(source) {
  const root = el("div", "rat-md");
  const lines = String(source ?? "").replace(/\r\n?/g, "\n").split("\n");
  let i = 0;
  let para = [];
  const flush = () => {
    if (!para.length) return;
    const p = el("p");
    inline(para.join(" "), p);
    root.append(p);
    para = [];
  };
  while (i < lines.length) {
    const line = lines[i];
    const fence = line.match(/^\s*(```|~~~)/);
    if (fence) {
      flush();
      const body = [];
      i += 1;
      while (i < lines.length && !lines[i].trim().startsWith(fence[1])) body.push(lines[i++]);
      i += 1;
      const pre = el("pre");
      const code = el("code");
      code.textContent = body.join("\n");
      pre.append(code);
      root.append(pre);
      continue;
    }
    const heading = line.match(/^\s{0,3}(#{1,6})\s+(.*?)\s*#*\s*$/);
    if (heading) {
      flush();
      const h = el("div", `rat-md-h rat-md-h${heading[1].length}`);
      inline(heading[2], h);
      root.append(h);
      i += 1;
      continue;
    }
    const item = line.match(/^\s*([-*+]|\d+[.)])\s+(.*)$/);
    if (item) {
      flush();
      const ordered = /\d/.test(item[1]);
      const list = el(ordered ? "ol" : "ul");
      while (i < lines.length) {
        const m = lines[i].match(/^\s*([-*+]|\d+[.)])\s+(.*)$/);
        if (!m || /\d/.test(m[1]) !== ordered) break;
        const li = el("li");
        inline(m[2], li);
        list.append(li);
        i += 1;
      }
      root.append(list);
      continue;
    }
    const quote = line.match(/^\s*>\s?(.*)$/);
    if (quote) {
      flush();
      const body = [];
      while (i < lines.length && /^\s*>/.test(lines[i])) body.push(lines[i++].replace(/^\s*>\s?/, ""));
      const q = el("blockquote");
      q.append(renderMarkdown(body.join("\n")));
      root.append(q);
      continue;
    }
    if (!line.trim()) flush();
    else para.push(line.trim());
    i += 1;
  }
  flush();
  return root;
}
