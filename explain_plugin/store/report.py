"""``report.html``: a self-contained gallery of a run (inline JS/CSS, no network).

Rows are embedded as JSON and rendered a page at a time, thumbnails load lazily,
so a 10,000-item run opens at once. Sorting, filtering and paging are client-side.
"""
from __future__ import annotations

import json
from html import escape
from typing import Any, Iterable

from explain_plugin.atomic import atomic_open

PAGE_SIZE = 50


def report_row(shard: dict, metrics: list[str]) -> dict[str, Any]:
    targets = shard.get("targets") or []
    first = targets[0] if targets else {}
    return {
        "k": shard["key"], "s": shard["subset"], "gt": "|".join(shard.get("gt") or []),
        "p": shard.get("pred") or "", "c": shard.get("correct"),
        "sc": first.get("score"), "m": {m: first.get(m) for m in metrics if m in first},
        "t": [{"l": t["label"], "r": t.get("role", ""), "sc": t.get("score"),
               "o": t.get("overlay"), "h": t.get("heatmap"),
               "m": {m: t.get(m) for m in metrics if m in t}} for t in targets],
        "n": shard.get("note") or "",
    }


def write_report(path, title: str, summary: dict[str, Any], metrics: list[str],
                 shards: Iterable[dict]) -> int:
    rows = 0
    with atomic_open(path, "w", encoding="utf-8") as f:
        f.write(_HEAD.replace("{{TITLE}}", escape(title)))
        f.write('<script id="summary" type="application/json">'
                + _script_json({**summary, "metrics": metrics, "pageSize": PAGE_SIZE})
                + "</script>\n")
        f.write('<script id="rows" type="application/json">[')
        for shard in shards:
            f.write(("," if rows else "") + "\n" + _script_json(report_row(shard, metrics)))
            rows += 1
        f.write("\n]</script>\n")
        f.write(_TAIL)
    return rows


def _script_json(value: Any) -> str:
    return json.dumps(value, default=str).replace("</", "<\\/")


_HEAD = """<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{{TITLE}}</title>
<style>
body{font:14px system-ui,sans-serif;margin:0;color:#222;background:#fafafa}
header{padding:10px 16px;background:#263238;color:#fff}
header h1{font-size:18px;margin:0 0 4px}
header .sum{font-size:12px;opacity:.85}
.bar{display:flex;gap:10px;align-items:center;padding:8px 16px;flex-wrap:wrap;
     background:#eceff1;position:sticky;top:0;z-index:2}
.bar input[type=search]{width:220px;padding:4px}
table{border-collapse:collapse;width:100%;background:#fff}
th,td{padding:4px 8px;border-bottom:1px solid #e0e0e0;text-align:left;vertical-align:middle}
th{cursor:pointer;user-select:none;background:#f5f5f5;position:sticky;top:44px}
th.asc::after{content:" \\25B2"} th.desc::after{content:" \\25BC"}
td.num{text-align:right;font-variant-numeric:tabular-nums}
tr.row:hover{background:#f1f8e9;cursor:pointer}
tr.wrong td.pred{color:#c62828;font-weight:600}
img.thumb{height:64px;max-width:120px;object-fit:contain;background:#ddd}
#detail{position:fixed;inset:0;background:rgba(0,0,0,.6);display:none;z-index:5;overflow:auto}
#detail .box{background:#fff;margin:30px auto;padding:16px;max-width:1100px;border-radius:6px}
#detail .maps{display:flex;flex-wrap:wrap;gap:12px}
#detail figure{margin:0;max-width:520px}
#detail figure img{width:480px;max-width:100%;height:auto;display:block}
#detail figcaption{font-size:12px;margin-top:4px}
button{padding:3px 10px}
</style></head><body>
<header><h1>{{TITLE}}</h1><div class="sum" id="sum"></div></header>
<div class="bar">
 <input type="search" id="q" placeholder="filter: id, label, note">
 <label><input type="checkbox" id="wrong"> wrong only</label>
 <select id="preset">
  <option value="">order: as run</option>
  <option value="wrong">wrong predictions first</option>
  <option value="pointing">lowest pointing first</option>
  <option value="score">lowest score first</option>
 </select>
 <button id="prev">&lsaquo; prev</button><span id="page"></span><button id="next">next &rsaquo;</button>
 <span id="count"></span>
</div>
<table><thead><tr id="heads"></tr></thead><tbody id="body"></tbody></table>
<div id="detail"><div class="box"><button id="close">close</button>
 <h2 id="dtitle"></h2><div id="dinfo"></div><div class="maps" id="dmaps"></div></div></div>
"""

_TAIL = """<script>
(function(){
"use strict";
var S=JSON.parse(document.getElementById("summary").textContent);
var ALL=JSON.parse(document.getElementById("rows").textContent);
ALL.forEach(function(r,i){r.i=i;});
var cols=[{k:"i",t:"#",num:true},{k:"img",t:"overlay"},{k:"k",t:"item"},{k:"gt",t:"GT"},
 {k:"p",t:"predicted"},{k:"c",t:"correct"},{k:"sc",t:"score",num:true}];
S.metrics.forEach(function(m){cols.push({k:"m."+m,t:m,num:true});});
cols.push({k:"nt",t:"targets",num:true});
var state={sort:null,dir:1,page:0,q:"",wrong:false};
var view=ALL.slice();
function val(r,k){
 if(k==="nt")return r.t.length;
 if(k.slice(0,2)==="m.")return r.m[k.slice(2)];
 if(k==="c")return r.c===null||r.c===undefined?null:(r.c?1:0);
 return r[k];}
function cmp(a,b,k,dir){
 var x=val(a,k),y=val(b,k);
 var xn=(x===null||x===undefined||x===""),yn=(y===null||y===undefined||y==="");
 if(xn&&yn)return a.i-b.i; if(xn)return 1; if(yn)return -1;
 if(x<y)return -dir; if(x>y)return dir; return a.i-b.i;}
function apply(){
 var q=state.q.toLowerCase();
 view=ALL.filter(function(r){
  if(state.wrong&&r.c!==false)return false;
  if(!q)return true;
  return (r.k+" "+r.gt+" "+r.p+" "+r.n).toLowerCase().indexOf(q)>=0;});
 if(state.sort){var k=state.sort,d=state.dir;view.sort(function(a,b){return cmp(a,b,k,d);});}
 var pages=Math.max(1,Math.ceil(view.length/S.pageSize));
 if(state.page>=pages)state.page=pages-1;
 render();}
function fmt(v){
 if(v===null||v===undefined)return "";
 if(typeof v==="number")return Math.abs(v)>=1000||v===Math.round(v)?String(v):v.toFixed(3);
 if(typeof v==="boolean")return v?"yes":"no";
 return String(v);}
function el(tag,cls,text){var e=document.createElement(tag);if(cls)e.className=cls;
 if(text!==undefined)e.textContent=text;return e;}
function heads(){
 var tr=document.getElementById("heads");tr.innerHTML="";
 cols.forEach(function(c){var th=el("th",null,c.t);th.dataset.key=c.k;
  if(state.sort===c.k)th.className=state.dir>0?"asc":"desc";
  if(c.k!=="img")th.onclick=function(){
   if(state.sort===c.k)state.dir=-state.dir;else{state.sort=c.k;state.dir=1;}
   document.getElementById("preset").value="";state.page=0;apply();};
  tr.appendChild(th);});}
function render(){
 heads();
 var body=document.getElementById("body");body.innerHTML="";
 var start=state.page*S.pageSize,rows=view.slice(start,start+S.pageSize);
 var frag=document.createDocumentFragment();
 rows.forEach(function(r){
  var tr=el("tr","row"+(r.c===false?" wrong":""));tr.dataset.key=r.k;
  cols.forEach(function(c){
   var td;
   if(c.k==="img"){td=el("td");if(r.t.length&&r.t[0].o){var im=el("img","thumb");
     im.loading="lazy";im.alt=r.k;im.src=r.t[0].o;td.appendChild(im);}}
   else{td=el("td",(c.num?"num ":"")+(c.k==="p"?"pred":""),
     fmt(c.k==="i"?r.i+1:c.k==="c"?r.c:val(r,c.k)));
     td.dataset.col=c.k;}
   tr.appendChild(td);});
  tr.onclick=function(){open(r);};
  frag.appendChild(tr);});
 body.appendChild(frag);
 var pages=Math.max(1,Math.ceil(view.length/S.pageSize));
 document.getElementById("page").textContent=" page "+(state.page+1)+" / "+pages+" ";
 document.getElementById("count").textContent=view.length+" of "+ALL.length+" items";
 document.body.dataset.rendered=String(rows.length);}
function open(r){
 document.getElementById("dtitle").textContent=r.k;
 document.getElementById("dinfo").textContent="GT: "+(r.gt||"-")+"   predicted: "+(r.p||"-")+
  (r.n?"   note: "+r.n:"");
 var maps=document.getElementById("dmaps");maps.innerHTML="";
 r.t.forEach(function(t){var f=el("figure");var im=el("img");im.src=t.o;im.alt=t.l;
  f.appendChild(im);var parts=[t.l+" ("+t.r+")","score "+fmt(t.sc)];
  Object.keys(t.m).forEach(function(m){parts.push(m+" "+fmt(t.m[m]));});
  var cap=el("figcaption",null,parts.join(" \\u00b7 ")+" ");
  var a=el("a",null,"heatmap .npy");a.href=t.h;cap.appendChild(a);
  f.appendChild(cap);maps.appendChild(f);});
 document.getElementById("detail").style.display="block";}
document.getElementById("close").onclick=function(){
 document.getElementById("detail").style.display="none";};
document.getElementById("q").oninput=function(e){state.q=e.target.value;state.page=0;apply();};
document.getElementById("wrong").onchange=function(e){state.wrong=e.target.checked;state.page=0;apply();};
document.getElementById("preset").onchange=function(e){
 var v=e.target.value;state.page=0;
 if(v==="wrong"){state.sort="c";state.dir=1;}
 else if(v==="pointing"){state.sort="m.pointing";state.dir=1;}
 else if(v==="score"){state.sort="sc";state.dir=1;}
 else{state.sort=null;}
 apply();};
document.getElementById("prev").onclick=function(){if(state.page>0){state.page--;render();}};
document.getElementById("next").onclick=function(){
 if((state.page+1)*S.pageSize<view.length){state.page++;render();}};
var sum=[S.method+" on "+S.target+" with model "+S.model,ALL.length+" items"];
if(S.skipped)sum.push(S.skipped+" skipped (no image)");
if(S.accuracy!==null&&S.accuracy!==undefined)sum.push("accuracy "+(100*S.accuracy).toFixed(1)+"%");
document.getElementById("sum").textContent=sum.join(" \\u00b7 ");
window.reportState=state;window.reportApply=apply;
apply();
})();
</script></body></html>
"""
