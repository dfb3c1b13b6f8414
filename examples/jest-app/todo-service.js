// A tiny app module: it only ever asks data-plug for "the dialect".
const { getDialect, BaseRepository } = require('@mostajs/data-plug')

const TodoSchema = {
  name: 'Todo',
  collection: 'todos',
  timestamps: true,
  fields: { title: { type: 'string', required: true }, done: { type: 'boolean', default: false } },
  relations: {},
  indexes: [],
}

async function repo() {
  return new BaseRepository(TodoSchema, await getDialect())
}

async function addTodo(title) {
  return (await repo()).create({ title })
}

async function openTodos() {
  return (await repo()).findAll({ done: false }, { sort: { title: 1 } })
}

module.exports = { TodoSchema, addTodo, openTodos }
