"""Admin pages for the catalog: its posts (edit, re-fetch, delete, merge duplicates),
its topics (the vocabulary, merging, re-tagging) and removing the demo catalog.
Every route is for admins only; readers' saved articles are never shown here."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, abort, flash, redirect, request, url_for
from flask.typing import ResponseReturnValue
from flask_login import current_user
from werkzeug.datastructures import MultiDict

from app import access
from app.catalog import admin_queries as queries
from app.catalog import admin_services as services
from app.catalog.admin_forms import CONTENT_CHOICES, PostFilters, PostForm, TopicForm
from app.catalog.admin_tasks import retag_catalog
from app.catalog.tasks import fetch_article
from app.models import Post, Topic
from app.pagination import paginate
from app.security import safe_next_url
from app.templating import redirect_back, render, render_fragment, wants_fragment

bp = Blueprint("catalog", __name__, url_prefix="/admin")
bp.before_request(access.require_admin)

POSTS_PER_PAGE = 50


def _back_to_list() -> str:
    """Where "back to the posts" goes: the list with the filters the admin came from,
    carried in the query string (`?next=`) of the post's pages and their forms."""
    return safe_next_url(request.args.get("next")) or url_for("catalog.posts")


def _edit_url(post_id: int) -> str:
    back = _back_to_list()
    return url_for("catalog.post_edit", post_id=post_id, next=_as_arg(back))


def _as_arg(back: str) -> str | None:
    """`back` as a `next` argument, or None (left out) when it is the plain list."""
    return None if back == url_for("catalog.posts") else back


# --- posts ---------------------------------------------------------------------------


@bp.get("/posts")
def posts() -> ResponseReturnValue:
    """The catalog's posts, newest first, with search, filters and pages; htmx gets
    the table alone (live filtering pushes the URL)."""
    filters = PostFilters.from_args(request.args)
    page = paginate(queries.admin_posts(filters), filters.page, POSTS_PER_PAGE)
    response = render(
        "catalog/posts.html",
        "catalog/partials/post_rows.html",
        filters=filters,
        page=page,
        per_page=POSTS_PER_PAGE,
        stats=queries.post_stats(post.id for post in page.items),
        sources=queries.sources(),
        topics=queries.all_topics(),
        contents=CONTENT_CHOICES,
        demo=None if wants_fragment() else queries.demo_catalog(),
    )
    if wants_fragment():  # the address bar shows the filters without the empty fields
        response.headers["HX-Push-Url"] = url_for("catalog.posts", **filters.to_args())
    return response


def _post_form(post: Post, formdata: MultiDict[str, str] | None = None) -> PostForm:
    form = PostForm(formdata=formdata, obj=post if formdata is None else None)
    form.topics.choices = [(topic.id, topic.name) for topic in queries.all_topics()]
    if formdata is None:
        form.topics.data = [topic.id for topic in post.topics]
    return form


def _post_page(post: Post, form: PostForm, status: int = 200, **extra: Any) -> ResponseReturnValue:
    return render(
        "catalog/post_edit.html",
        extra.pop("fragment", "catalog/partials/post_form.html"),
        status,
        post=post,
        form=form,
        readers=queries.reader_count(post.id),
        back=_back_to_list(),
        back_arg=_as_arg(_back_to_list()),
        **extra,
    )


@bp.get("/posts/<int:post_id>")
def post_edit(post_id: int) -> ResponseReturnValue:
    """One catalog post's details to edit, its article, merge and delete."""
    post = queries.catalog_post(post_id)
    return _post_page(post, _post_form(post))


@bp.post("/posts/<int:post_id>")
def post_update(post_id: int) -> ResponseReturnValue:
    """Save the post; invalid input comes back inline (422) with what to fix."""
    post = queries.catalog_post(post_id)
    form = _post_form(post, request.form)
    if form.validate():
        changes = services.PostChanges(
            title=form.title.data or "",
            summary=form.summary.data or "",
            author=form.author.data or "",
            published_on=form.published_on.data,
            url=form.normalized_url,
            topic_ids=list(form.topics.data or []),
        )
        try:
            changed = services.update_post(current_user, post_id, changes)
        except LookupError:
            abort(404)
        except services.CatalogError as error:
            getattr(form, error.field or "title").errors.append(str(error))
        else:
            flash("Post saved." if changed else "Nothing changed.", "success")
            if not wants_fragment():
                return redirect_back("catalog.post_edit", post_id=post_id)
            post = queries.catalog_post(post_id)
            return _post_page(post, _post_form(post))
    return _post_page(post, form, 422)


@bp.get("/posts/<int:post_id>/fetch")
def post_fetch(post_id: int) -> ResponseReturnValue:
    """Where fetching the post's article stands (htmx polls it while it runs)."""
    post = queries.catalog_post(post_id)
    return _post_page(post, _post_form(post), fragment="catalog/partials/fetch_state.html")


@bp.post("/posts/<int:post_id>/fetch")
def post_refetch(post_id: int) -> ResponseReturnValue:
    """Fetch the post's article again."""
    try:
        result = services.refetch_post(current_user, post_id)
    except LookupError:
        abort(404)
    if result.queued:
        fetch_article(post_id)
    flash(result.message, "success" if result.queued else "error")
    if not wants_fragment():
        return redirect_back("catalog.post_edit", post_id=post_id)
    return render_fragment(
        "catalog/partials/fetch_state.html",
        post=queries.catalog_post(post_id),
        back_arg=_as_arg(_back_to_list()),
    )


@bp.get("/posts/<int:post_id>/delete")
def post_delete_confirm(post_id: int) -> ResponseReturnValue:
    """Are you sure? Says how many readers have the post on their list."""
    post = queries.catalog_post(post_id)
    return render(
        "catalog/post_delete.html",
        "catalog/partials/post_delete.html",
        confirming=True,
        post=post,
        readers=queries.reader_count(post.id),
        back=_back_to_list(),
        back_arg=_as_arg(_back_to_list()),
    )


@bp.post("/posts/<int:post_id>/delete")
def post_delete(post_id: int) -> ResponseReturnValue:
    """Delete the post and every reader's entry for it."""
    try:
        deleted = services.delete_post(current_user, post_id)
    except LookupError:
        abort(404)
    entries = (
        f" and {deleted.entries} list {'entry' if deleted.entries == 1 else 'entries'}"
        if deleted.entries
        else ""
    )
    flash(f"Deleted “{deleted.title}”{entries}.", "success")
    return redirect(_back_to_list(), code=303)


def _merge_page(
    duplicate: Post, status: int = 200, *, error: str = "", into: Post | None = None
) -> ResponseReturnValue:
    # Not `q`: base.html would show it in the header's search box.
    merge_q = " ".join(request.values.get("q", "").split())[:200]
    return render(
        "catalog/post_merge.html",
        "catalog/partials/merge_candidates.html",
        status,
        post=duplicate,
        merge_q=merge_q,
        candidates=queries.merge_candidates(duplicate, merge_q),
        plan=queries.merge_plan(duplicate, into) if into is not None else None,
        error=error,
        back=_back_to_list(),
        back_arg=_as_arg(_back_to_list()),
    )


def _into(duplicate: Post) -> tuple[Post | None, str]:
    """The post chosen to keep, from `into` (an id), or why it can't be."""
    raw = request.values.get("into", "").strip().lstrip("#")
    if not raw:
        return None, ""
    post = queries.find_catalog_post(int(raw)) if raw.isdigit() and len(raw) < 19 else None
    if post is None:
        return None, f"There is no catalog post {raw}."
    if post.id == duplicate.id:
        return None, "Choose another post: a post can't be merged into itself."
    return post, ""


@bp.get("/posts/<int:post_id>/merge")
def post_merge(post_id: int) -> ResponseReturnValue:
    """Find the post to keep (htmx: the candidates alone), then review the merge."""
    duplicate = queries.catalog_post(post_id)
    into, error = _into(duplicate)
    return _merge_page(duplicate, 422 if error else 200, error=error, into=into)


@bp.post("/posts/<int:post_id>/merge")
def post_merge_submit(post_id: int) -> ResponseReturnValue:
    """Merge this post into the chosen one; the survivor's page opens."""
    duplicate = queries.catalog_post(post_id)
    into, error = _into(duplicate)
    if into is None:
        return _merge_page(duplicate, 422, error=error or "Choose the post to keep.")
    try:
        merged = services.merge_posts(current_user, post_id, into.id)
    except LookupError:
        abort(404)
    except services.CatalogError as failure:
        return _merge_page(duplicate, 422, error=str(failure))
    flash(
        f"Merged “{merged.duplicate_title}” into this post: {merged.moved} list "
        f"{'entry' if merged.moved == 1 else 'entries'} moved, {merged.combined} combined.",
        "success",
    )
    return redirect(_edit_url(merged.survivor_id), code=303)


@bp.get("/posts/remove-demo")
def posts_remove_demo_confirm() -> ResponseReturnValue:
    """Are you sure? Says how many posts and list entries go."""
    return render(
        "catalog/remove_demo.html",
        "catalog/partials/remove_demo.html",
        confirming=True,
        demo=queries.demo_catalog(),
    )


@bp.post("/posts/remove-demo")
def posts_remove_demo() -> ResponseReturnValue:
    """Delete the demo catalog's posts, with readers' entries for them."""
    removed = services.remove_demo_catalog(current_user)
    if removed.posts:
        flash(
            f"Removed the demo catalog: {removed.posts} posts and {removed.entries} list "
            f"{'entry' if removed.entries == 1 else 'entries'}.",
            "success",
        )
    else:
        flash("There was no demo catalog to remove.", "success")
    return redirect(url_for("catalog.posts"), code=303)


# --- topics --------------------------------------------------------------------------


def _topics_page(form: TopicForm | None = None, status: int = 200) -> ResponseReturnValue:
    topics = queries.all_topics()
    form = form or TopicForm(formdata=None)
    form.keywords.render_kw = {**(form.keywords.render_kw or {}), "rows": 4}  # a side card
    return render(
        "catalog/topics.html",
        "catalog/topics.html",
        status,
        topics=topics,
        counts=queries.topic_post_counts(),
        keywords={topic.id: queries.effective_keywords(topic) for topic in topics},
        form=form,
        run=queries.latest_run(),
    )


@bp.get("/topics")
def topics() -> ResponseReturnValue:
    """The vocabulary: topics with their keywords and post counts; add, merge, re-tag."""
    return _topics_page()


@bp.post("/topics")
def topic_create() -> ResponseReturnValue:
    """Add a topic (it lands on posts at the next import or re-tag)."""
    form = TopicForm()
    if form.validate():
        try:
            topic = services.create_topic(
                current_user, form.name.data or "", form.slug.data or "", form.keywords.data or ""
            )
        except services.CatalogError as error:
            getattr(form, error.field or "name").errors.append(str(error))
        else:
            flash(f"Topic “{topic.name}” added. Re-tag the catalog to put it on posts.", "success")
            return redirect(url_for("catalog.topics"), code=303)
    return _topics_page(form, 422)


def _topic_page(topic: Topic, form: TopicForm, status: int = 200) -> ResponseReturnValue:
    return render(
        "catalog/topic_edit.html",
        "catalog/partials/topic_form.html",
        status,
        topic=topic,
        form=form,
        posts=queries.topic_post_counts().get(topic.id, 0),
    )


@bp.get("/topics/<int:topic_id>")
def topic_edit(topic_id: int) -> ResponseReturnValue:
    """One topic's name, slug and keywords to edit."""
    topic = queries.topic(topic_id)
    form = TopicForm(
        formdata=None,
        data={
            "name": topic.name,
            "slug": topic.slug,
            "keywords": queries.effective_keywords(topic),
        },
    )
    return _topic_page(topic, form)


@bp.post("/topics/<int:topic_id>")
def topic_update(topic_id: int) -> ResponseReturnValue:
    """Rename the topic or change its keywords; a bad pattern is named inline (422)."""
    topic = queries.topic(topic_id)
    form = TopicForm()
    if form.validate():
        try:
            changed = services.update_topic(
                current_user,
                topic_id,
                form.name.data or "",
                form.slug.data or "",
                form.keywords.data or "",
            )
        except LookupError:
            abort(404)
        except services.CatalogError as error:
            getattr(form, error.field or "name").errors.append(str(error))
        else:
            if "keywords" in changed:
                flash("Topic saved. Re-tag the catalog to apply the new keywords.", "success")
            else:
                flash("Topic saved." if changed else "Nothing changed.", "success")
            if not wants_fragment():
                return redirect_back("catalog.topic_edit", topic_id=topic_id)
            topic = queries.topic(topic_id)
            return _topic_page(topic, form)
    return _topic_page(topic, form, 422)


def _topic_arg(name: str) -> Topic | None:
    raw = request.values.get(name, "")
    return queries.find_topic(int(raw)) if raw.isdigit() and len(raw) < 19 else None


@bp.get("/topics/merge")
def topics_merge_confirm() -> ResponseReturnValue:
    """What merging one topic into another will do, with the button that does it."""
    return _merge_topics_page()


def _merge_topics_page(error: str = "") -> ResponseReturnValue:
    source, target = _topic_arg("topic"), _topic_arg("into")
    if not error:
        if source is None or target is None:
            error = "Choose the topic to merge and the topic to merge it into."
        elif source.id == target.id:
            error = "Choose two different topics."
    counts = queries.topic_post_counts()
    return render(
        "catalog/topic_merge.html",
        "catalog/topic_merge.html",
        422 if error else 200,
        source=source,
        target=target,
        counts=counts,
        topics=queries.all_topics(),
        error=error,
    )


@bp.post("/topics/merge")
def topics_merge() -> ResponseReturnValue:
    """Merge one topic into another: its posts get the other, then it is deleted."""
    source, target = _topic_arg("topic"), _topic_arg("into")
    if source is None or target is None or source.id == target.id:
        return _merge_topics_page()
    try:
        merged = services.merge_topics(current_user, source.id, target.id)
    except LookupError:
        abort(404)
    except services.CatalogError as error:
        return _merge_topics_page(str(error))
    flash(
        f"Merged “{merged.source_name}” into “{merged.target_name}” "
        f"({merged.posts} {'post' if merged.posts == 1 else 'posts'}).",
        "success",
    )
    return redirect(url_for("catalog.topics"), code=303)


@bp.post("/topics/retag")
def topics_retag() -> ResponseReturnValue:
    """Start re-tagging the whole catalog in the background (or show the run that is
    already going); htmx gets the progress bar, which polls until it is done."""
    run, new = services.start_retag(current_user)
    if new:
        retag_catalog(run.id)
        flash("Re-tagging the catalog in the background.", "success")
    else:
        flash("A re-tag is already under way; here is its progress.", "success")
    if not wants_fragment():
        return redirect(url_for("catalog.topics_retag_status", run_id=run.id), code=303)
    return render_fragment("catalog/partials/retag_job.html", run=queries.job_run(run.id))


@bp.get("/topics/retag/<int:run_id>")
def topics_retag_status(run_id: int) -> ResponseReturnValue:
    """A re-tag run's progress: htmx polls the bar every second; without JavaScript
    the page refreshes itself while the run is going."""
    return render(
        "catalog/retag.html", "catalog/partials/retag_job.html", run=queries.job_run(run_id)
    )
